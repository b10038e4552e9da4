# TRG305: a cron time zone must be an IANA name.
action report = shell "./report.sh"

on cron "0 3 * * *" tz "Mars/Olympus" run report  # expect: TRG305@24
on cron "0 4 * * *" tz "" run report  # expect: TRG305@24
on cron "0 5 * * *" tz "Europe/Paris" run report
