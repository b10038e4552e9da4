# TRG209: a webhook route nobody has to sign or authenticate for (a warning).
source gitlab path="/gl"  # expect: TRG209@8
action deploy = shell "./deploy.sh"

on github.push branch="main" run deploy  # expect: TRG209@4
on gitlab.push run deploy
on http.post path="/hooks/build" run deploy  # expect: TRG209@4
on ci.completed status="success" run deploy  # expect: TRG209@4
