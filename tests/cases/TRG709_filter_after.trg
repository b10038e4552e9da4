# TRG709: a filter written after a correlation trigger applies to no member.
action d = shell "true"

on all(git.push, git.tag) within 1h branch="main" run d  # expect: TRG709@37
on all(git.push, git.tag) branch="main" run d  # expect: TRG709 TRG707
on 3 of git.push within 1h branch="main" run d  # expect: TRG709
on absent(git.tag) same <sha> for 1h branch="main" run d  # expect: TRG709
on all(git.push branch="main", git.tag) within 1h run d
