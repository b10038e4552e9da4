# TRG710 (warning): two members of a correlation can match one event.
action d = shell "true"

on all(git.push as a, git.push branch="main" as b) within 1h run d  # expect: TRG710@23
on all(git.push branch="a" as a, git.push branch!="a" as b) within 1h run d
on all(git.push branch="a" as a, git.push branch in ["b", "c"] as b) within 1h run d
on all(git.push, git.tag) within 1h run d
