# Tests of flaky.trg.

test "three failures of one pipeline within ten minutes notify":
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/1"
    wait 4m
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/2"
    wait 4m
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/3"
    expect only flaky
    expect flaky with pipeline="e2e", url="https://ci/3"

test "failures further apart slide out of the window":
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/1"
    wait 6m
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/2"
    wait 6m
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/3"
    expect none
    expect open flaky key "e2e"
    wait 3m
    given ci.completed status="failure" branch="main" pipeline="e2e" url="https://ci/4"
    expect flaky with url="https://ci/4"

test "failures of different pipelines are counted apart":
    given ci.completed status="failure" branch="main" pipeline="e2e"
    given ci.completed status="failure" branch="main" pipeline="unit"
    given ci.completed status="failure" branch="main" pipeline="e2e"
    expect none
    wait 10m
    expect expired flaky key "e2e"
    expect expired flaky key "unit"
