# TRG205: an operator that does not apply to the field's type.
action deploy = shell "./deploy.sh"

on git.push forced ~ "t*" run deploy  # expect: TRG205@20
on git.push branch > "a" run deploy  # expect: TRG205@20
on git.push commits !~ "1*" run deploy  # expect: TRG205
on http.post path="/hook" headers="x" run deploy  # expect: TRG205 TRG209
on git.push branch="main" run deploy
