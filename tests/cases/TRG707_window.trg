# TRG707: a correlation window that is missing, not positive, on a nested group, too long
# (warning), or between crons whose windows would not close before the next opens.
action d = shell "true"

on all(git.push, git.tag) run d  # expect: TRG707@4
on any(git.push, git.tag) same <sha> run d  # expect: TRG707
on all(git.push, git.tag) within 0s run d  # expect: TRG707@34
on all(git.push, git.tag) within 8d run d  # expect: TRG707
on all(git.push, git.tag) within 36501d run d  # expect: TRG707@34
on seq(git.push, all(git.tag, git.merge) within 1m) within 5m run d  # expect: TRG707@49
on seq(git.push, all(git.tag, git.merge) same <sha>) within 5m run d  # expect: TRG707
on absent(git.push) between cron "0 * * * *" and cron "0 6 * * *" run d  # expect: TRG707
on absent(git.push) run d  # expect: TRG707
on absent(git.push) within 5m run d  # expect: TRG707
on 3 of git.push run d  # expect: TRG707
on any(git.push, git.tag) run d
on absent(git.push) between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris" run d
