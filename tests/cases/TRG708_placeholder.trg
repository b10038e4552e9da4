# TRG708: a placeholder of a correlation rule that names no alias, no same key or no group
# value, reads the absent member, or (warning) a member that may have no event.
action d(x) = shell "true"

on all(git.push as p, git.tag as t) same <sha> within 1h run d with <nope.sha>  # expect: TRG708@69
on all(git.push as p, git.tag as t) same <sha> within 1h run d with <branch>  # expect: TRG708
on absent(git.tag as t) after git.push as p same <sha> within 1h run d with <t.sha>  # expect: TRG708
on any(git.push as p, git.tag as t) same <sha> within 1h run d with <p.branch>  # expect: TRG708
on all(git.push as p, file.modified as f key <path>) same <sha> within 1h run d with <group.first.branch>  # expect: TRG708
on all(git.push as p, git.tag as t) same <sha> within 1h run d with <group.nope>  # expect: TRG708
on all(git.push as p, git.tag as t) same <sha> within 1h run d with <p>  # expect: TRG708
on all(git.push as p, git.tag as t) same <sha> within 1h run d with <p.branch> dedupe <nope> for 1d  # expect: TRG708
on all(git.push as p, git.tag as t) same <sha> within 1h run d with <group.first.branch> dedupe <sha> for 1d
on absent(git.tag as t) after git.push as p same <sha> within 1h run d with <p.author>
