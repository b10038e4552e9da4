# TRG711: absent inside a group, after with for/between or without within, keys of the
# wrong type in the list, a keyed between window that lists no keys.
action d = shell "true"

on all(git.push, absent(git.tag)) within 1h run d  # expect: TRG711@18
on absent(git.tag) after git.push for 1h run d  # expect: TRG711
on absent(git.tag) after git.push run d  # expect: TRG711
on absent(git.tag) same <branch> in ["a", 1] for 1h run d  # expect: TRG711
on absent(git.tag) same <branch> between cron "0 1 * * *" and cron "0 2 * * *" run d  # expect: TRG711
on absent(git.tag) same <branch> in ["a", "b"] for 1h run d
