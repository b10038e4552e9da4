# Scheduled jobs: a nightly build, a weekday report and a frequent health check.

action nightly_build(kind="full") = exec "./scripts/build.sh" "--kind" kind
action report = shell "./scripts/report.sh > report.txt"
action ping = exec "curl" "-fsS" "--max-time" "5" "http://127.0.0.1:8000/health"

# Every night at 02:30, Paris time (cron "minute hour day month weekday").
nightly: on cron "30 2 * * *" tz "Europe/Paris" run nightly_build timeout 2h

# Weekday mornings at 07:00 UTC.
report: on cron "0 7 * * 1-5" run report

# Every five minutes; a ping that is still running means the next one is dropped.
health: on every 5m run ping busy skip timeout 30s

# When the nightly build fails, run it again in the quick mode.
rebuild: on run.failed rule="nightly" run nightly_build with "quick"
