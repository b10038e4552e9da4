# TRG001 with a did-you-mean: a misspelled keyword (tests/test_parser.py checks the hints).
action deploy(sha) = exec "./deploy.sh" sha

on git.push branch="main" rnu deploy with <sha>  # expect: TRG001@27
on git.push branch="a" run deploy wiht <sha>  # expect: TRG001@35
on git.push branch="b" run deploy with <sha> debounse 1s  # expect: TRG001@46
acton notify = shell "./notify.sh"  # expect: TRG001@1
on git.push branch="c" run deploy with <sha> tiemout 5m  # expect: TRG001@46
on git.push branch="d" run deploy with <sha>
