# TRG502: a rule identical to an earlier one runs its action twice (a warning).
action deploy(sha) = exec "./deploy.sh" sha

first: on git.push branch="main" run deploy with <sha>
second: on git.push branch = "main"  # expect: TRG502@1
    run deploy with <sha>
on git.push branch="main" run deploy with <sha>  # expect: TRG502@4
on git.push branch="main" run deploy with <sha> timeout 5m
