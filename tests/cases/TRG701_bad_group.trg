# TRG701: a correlation group of the wrong shape (N of with N = 1 or N = all is a warning).
action d = shell "true"

on all(git.push) within 1h run d  # expect: TRG701@4
on seq(git.push) within 1h run d  # expect: TRG701
on 3 of (git.push, git.tag) within 1h run d  # expect: TRG701@4
on 0 of (git.push, git.tag) within 1h run d  # expect: TRG701
on 1 of (git.push, git.tag) within 1h run d  # expect: TRG701
on 2 of (git.push, git.tag) within 1h run d  # expect: TRG701
on 1 of git.push within 1h run d  # expect: TRG701
on 2.5 of (git.push, git.tag) within 1h run d  # expect: TRG701
on all(git.push, seq(git.tag)) within 1h run d  # expect: TRG701@18
on 2 of (git.push, git.tag, git.merge) within 1h run d
on 3 of git.push within 1h run d
