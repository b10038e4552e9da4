# TRG703: a key field the member's event does not have, or members whose keys have different arity.
action d = shell "true"

on all(git.push as p, file.modified as f) same <sha> within 1h run d  # expect: TRG703@23
on all(git.push key <sha>, git.tag key <shaa>) within 1h run d  # expect: TRG703@40
on all(git.push key (<sha>, <branch>), git.tag key <sha>) within 1h run d  # expect: TRG703
on all(git.push key <sha>, git.tag) within 1h run d  # expect: TRG703
on all(git.push as p, file.modified as f key <path>) same <sha> within 1h run d
