# TRG712: debounce does not apply to a correlation rule (its window gathers events already).
action d = shell "true"

on all(git.push, git.tag) within 1h run d debounce 1s  # expect: TRG712@43
on all(git.push, git.tag) within 1h run d timeout 1m busy skip
