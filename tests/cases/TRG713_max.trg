# TRG713: max open groups outside 1..1,000,000.
action d = shell "true"

on all(git.push, git.tag) within 1h max 0 run d  # expect: TRG713@41
on all(git.push, git.tag) within 1h max 2000000 run d  # expect: TRG713
on all(git.push, git.tag) within 1h max 1.5 run d  # expect: TRG713
on all(git.push, git.tag) within 1h max 1000000 run d
