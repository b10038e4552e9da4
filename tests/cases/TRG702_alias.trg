# TRG702: a member's alias is duplicated, reserved, or missing where two members share an event name.
action d = shell "true"

on all(git.push as a, git.tag as a) within 1h run d  # expect: TRG702@34
on all(git.push as group, git.tag) within 1h run d  # expect: TRG702@20
on all(git.push branch="a", git.push branch="b") within 1h run d  # expect: TRG702@8 TRG702@29
on all(git.push branch="a" as x, git.push branch="b") within 1h run d  # expect: TRG702@34
on all(git.* branch="a", git.tag branch="b") within 1h run d  # expect: TRG702@8
on all(git.push branch="a" as push, git.push branch="b") within 1h run d  # expect: TRG702
on all(git.push branch="a" as x, git.push branch="b" as y) within 1h run d
