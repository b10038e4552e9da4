# TRG303: a cron expression has five valid fields.
action report = shell "./report.sh"

on cron "0 3 * *" run report  # expect: TRG303@9
on cron "61 3 * * *" run report  # expect: TRG303@9
on cron "0 3 * * 1-5 2024" run report  # expect: TRG303
on cron "0 3 * * mon-fri" tz "UTC" run report
