# Absence (SPEC §11): runs for an event that did not come.

secret ci_token = env "CI_WEBHOOK_TOKEN"
secret heartbeat_token = env "HEARTBEAT_TOKEN"

source ci path="/ci" token=ci_token
source http path="/hooks/heartbeat" token=heartbeat_token

action page(text, host="", since="") = exec "./scripts/page.sh" text host since

# The nightly pipeline did not succeed between 02:30 and 06:00, Paris time: page at 06:00.
nightly_missing: on absent(ci.completed pipeline="nightly" status="success")
    between cron "30 2 * * *" and cron "0 6 * * *" tz "Europe/Paris"
    run page with text="nightly did not succeed by 06:00", since=<group.opened_at>

# A host that sent a heartbeat and then none for five minutes: page, naming the host.
host_silent: on absent(http.post path="/hooks/heartbeat" as hb) same <query.host> for 5m
    run page with text="no heartbeat for 5 minutes", host=<query.host>
