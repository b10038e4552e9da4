# TRG304: a duration that must be longer than zero, and at most 100 years.
let zero = 0s
action deploy = shell "./deploy.sh"
action stopper = exec "./app" stop SIGINT grace 0s  # expect: TRG304@49
action stopper2 = exec "./app" stop grace 10mins  # expect: TRG304@43

on git.push branch="s" run stopper
on git.push branch="a" run deploy timeout 0s  # expect: TRG304@43
on git.push branch="b" run deploy debounce zero  # expect: TRG304@44
on every 0ms run deploy  # expect: TRG304@10
on git.push branch="c" run deploy retry 2 backoff 0m  # expect: TRG304@51
on git.push branch="d" run deploy dedupe <sha> for 0h  # expect: TRG304@52
on git.push branch="i" run deploy dedupe <sha> for 36500d timeout 36501d  # expect: TRG304@67
on every 99999999999999999999999d run deploy  # expect: TRG304@10
on every 99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999s run deploy  # expect: TRG304@10
# a duration the lexer cannot read is TRG304 at the duration, not a syntax error at its first digit
on git.push branch="e" run deploy timeout 10mins  # expect: TRG304@43
on git.push branch="f" run deploy debounce 5 m  # expect: TRG304@44
on git.push branch="g" run deploy timeout 10  # expect: TRG304@43
on git.push branch="h" run deploy retry 2 backoff 1w  # expect: TRG304@51
let later = 3 hours  # expect: TRG304@13
