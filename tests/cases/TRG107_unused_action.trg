# TRG107: an action no rule runs (a warning).
action deploy = shell "./deploy.sh"
action lint = shell "ruff check ."  # expect: TRG107@8
action report(x) = exec "./report" x  # expect: TRG107

on git.push run deploy
