# TRG408: an invalid action declaration.
secret hook = env "HOOK_SECRET"
action a(x, x) = exec "./a" x  # expect: TRG408@13
action b = http get "https://example.com/runs"  # expect: TRG408@17
action c = http post "ftp://example.com/runs" secret=hook  # expect: TRG408@22
action d = http post "https://example.com/runs" secrett=hook  # expect: TRG408@49
action e = shell "x" cwd "a" cwd "b"  # expect: TRG408@30
action f = shell "x" env BAD-NAME="1"  # expect: TRG408@26
action g = exec "./app" stop SIGSTOP  # expect: TRG408@30
action h = exec "./app" stop SIGINTT grace 5s  # expect: TRG408@30
action i = http post "https://example.com/runs" secret=hook stop SIGINT  # expect: TRG408@61
action j = shell "x" stop SIGINT stop grace 3s  # expect: TRG408@34

on git.push branch="a" run a with "1", "2"
on git.push branch="b" run b
on git.push branch="c" run c
on git.push branch="d" run d
on git.push branch="e" run e
on git.push branch="f" run f
on git.push branch="g" run g
on git.push branch="h" run h
on git.push branch="i" run i
on git.push branch="j" run j
