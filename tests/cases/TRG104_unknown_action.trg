# TRG104: a rule runs an action declared in the file.
action deploy = shell "./deploy.sh"

on git.push branch="main" run deploy
on git.push branch="dev" run deplyo  # expect: TRG104@30
on git.push branch="x" run nothing with <sha>  # expect: TRG104
on git.push branch="y" run nothing with <nosuch>  # expect: TRG104 TRG403
