# TRG203: a field the trigger's events do not have.
action deploy = shell "./deploy.sh"

on git.push brnch="main" run deploy  # expect: TRG203@13
on git.push payload.ref="x" run deploy  # expect: TRG203@13
on git.push branch.name="x" run deploy  # expect: TRG203@13
on http.post path="/a" headers.x-a.b="x" run deploy  # expect: TRG203 TRG209
on file.changed has nme run deploy  # expect: TRG203@21
on file.changed not (path ~ "a/**" or extt="py") run deploy  # expect: TRG203@39
on git.push branch="main" run deploy
