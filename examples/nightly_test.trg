# Tests of nightly.trg. A schedule rule runs on the ticks of its own schedule only, so a
# test tick names the rule whose schedule fired: given schedule.tick rule="nightly".

test "the nightly tick runs the full build":
    given schedule.tick rule="nightly"
    expect only nightly
    expect nightly with kind="full"

test "the weekday report":
    given schedule.tick rule="report"
    expect only report

test "the health check":
    given schedule.tick rule="health"
    expect only health

test "a failed nightly build is run again in quick mode":
    given run.failed rule="nightly" action="nightly_build" status="failed" exit_code=2
    expect only rebuild
    expect rebuild with kind="quick"

test "a failed report is not rebuilt":
    given run.failed rule="report" action="report" status="failed" exit_code=1
    expect none

# The test's clock starts on Monday 2024-01-01 at 00:00 UTC, and wait/at tick the
# schedules it passes, in their own time zones: the calendar itself can be tested.

test "02:30 in Paris is 01:30 UTC in winter":
    at "2024-01-01T01:29:00Z"
    expect not nightly
    at "2024-01-01T01:30:00Z"
    expect nightly

test "the report runs on weekdays only":
    at "2024-01-06T06:00:00Z"
    expect report
    at "2024-01-08T06:59:00Z"
    expect not report
    wait 1m
    expect report

test "the health check runs every five minutes":
    wait 4m
    expect none
    wait 1m
    expect only health
