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
