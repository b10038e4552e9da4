# TRG303: a cron expression has five valid fields, and fires some day.
action report = shell "./report.sh"

on cron "0 3 * *" run report  # expect: TRG303@9
on cron "61 3 * * *" run report  # expect: TRG303@9
on cron "0 3 * * 1-5 2024" run report  # expect: TRG303
on cron "0 3 * * mon-fri" tz "UTC" run report
on cron "0 0 30 2 *" run report  # expect: TRG303@9
on cron "0 0 31 4,6 *" run report  # expect: TRG303@9
on cron "0 0 29 2 *" run report
on cron "@daily" run report
on cron "@Hourly" tz "Europe/Paris" run report
on cron "@reboot" run report  # expect: TRG303@9
on absent(git.push) between cron "0 0 30 2 *" and cron "0 6 * * *" run report  # expect: TRG303@34
on cron "0 0 * * 5-1" run report  # expect: TRG303@9
on cron "0 22-2 * * *" run report  # expect: TRG303@9
on cron "0 0 * * 5-0" run report
on cron "0 0 */2 * mon" run report
on cron "CRON_TZ=Europe/Paris 0 3 * * *" run report  # expect: TRG303@9
on cron "0 3 * * * /usr/local/bin/backup --full" run report  # expect: TRG303@9
