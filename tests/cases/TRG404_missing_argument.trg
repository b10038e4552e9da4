# TRG404: a parameter without a default that the rule does not bind.
action deploy(sha, stage) = exec "./deploy.sh" sha stage

on git.push branch="a" run deploy with <sha>  # expect: TRG404@28
on git.push branch="b" run deploy  # expect: TRG404 TRG404
on git.push branch="c" run deploy with stage="prod"  # expect: TRG404
on git.push branch="d" run deploy with <sha>, "prod"
