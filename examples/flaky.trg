# Three failures of one pipeline on main within ten minutes (SPEC §11: N of a member,
# a sliding window per key).

secret ci_token = env "CI_WEBHOOK_TOKEN"
source ci path="/ci" token=ci_token

action notify(text, pipeline="", url="") = exec "./scripts/notify.sh" text pipeline url

flaky: on 3 of ci.completed status="failure" branch="main" as fail same <pipeline> within 10m
    run notify with text="3 failures in 10 minutes", pipeline=<pipeline>, url=<fail.url>
