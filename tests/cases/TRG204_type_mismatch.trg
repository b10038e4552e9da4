# TRG204: a value of the wrong type for the field, operator or policy.
let five = 5
let name = "nightly"
action deploy = shell "./deploy.sh"

on git.push forced="yes" run deploy  # expect: TRG204@20
on git.push commits="3" run deploy  # expect: TRG204@21
on git.push branch=3 run deploy  # expect: TRG204@20
on git.push branch in "main" run deploy  # expect: TRG204@23
on git.push branch=["a", "b"] run deploy  # expect: TRG204@20
on git.push branch in ["a", 1] run deploy  # expect: TRG204@29
on git.push message ~ 5 run deploy  # expect: TRG204@23
on git.push commits > "many" run deploy  # expect: TRG204
on git.push forced=1 run deploy  # expect: TRG204
on git.push branch="a" run deploy timeout five  # expect: TRG204@43
on every name run deploy  # expect: TRG204@10
on http.post path=/hooks/ims run deploy  # expect: TRG204@19
on git.push branch=/^rel/ run deploy  # expect: TRG204@13
on git.push branch="main" run deploy
