# TRG401: more arguments than the action has parameters (or a parameter given twice).
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage
action lint = shell "ruff check ."

on git.push branch="a" run deploy with <sha>, "prod", "extra"  # expect: TRG401@55
on git.push branch="b" run lint with "x"  # expect: TRG401@38
on git.push branch="c" run deploy with sha=<sha>, "prod"  # expect: TRG401@51
on git.push branch="d" run deploy with sha=<sha>, sha="x"  # expect: TRG401@51
