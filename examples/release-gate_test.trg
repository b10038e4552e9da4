# Tests of release-gate.trg. Each test starts with no groups and the clock at Monday
# 2024-01-01T00:00:00Z; wait and at move it, and deadlines reached on the way fire there.

test "all three workflows green for one sha deploy it":
    given github.workflow_run workflow="build" conclusion="success" branch="main" sha="3f1d"
    wait 10m
    given github.workflow_run workflow="test" conclusion="success" branch="main" sha="3f1d"
    expect open release_gate key "3f1d" missing e2e
    expect none
    wait 20m
    given github.workflow_run workflow="e2e" conclusion="success" branch="main" sha="3f1d"
    expect only release_gate
    expect release_gate with sha="3f1d", stage="staging"

test "a group that misses its window expires without a run":
    given github.workflow_run workflow="build" conclusion="success" branch="main" sha="9a9a"
    wait 2h
    expect expired release_gate key "9a9a" missing test, e2e
    expect none

test "workflows of two commits do not pair up":
    given github.workflow_run workflow="build" conclusion="success" branch="main" sha="aaaa"
    given github.workflow_run workflow="test" conclusion="success" branch="main" sha="bbbb"
    given github.workflow_run workflow="e2e" conclusion="success" branch="main" sha="aaaa"
    expect none
    expect open release_gate key "aaaa" missing test
    expect open release_gate key "bbbb" missing build, e2e

test "a failed workflow is not a member; its green re-run is":
    given github.workflow_run workflow="build" conclusion="success" branch="main" sha="3f1d"
    given github.workflow_run workflow="test" conclusion="failure" branch="main" sha="3f1d"
    given github.workflow_run workflow="e2e" conclusion="success" branch="main" sha="3f1d"
    expect open release_gate key "3f1d" missing test
    wait 1h
    given github.workflow_run workflow="test" conclusion="success" branch="main" sha="3f1d"
    expect release_gate with sha="3f1d"

test "the mirror's push is absorbed: one deploy":
    given github.push branch="main" sha="c0ffee"
    expect only deploy_once
    expect deploy_once with sha="c0ffee", stage="prod"
    wait 5m
    given gitlab.push branch="main" sha="c0ffee"
    expect none
    expect open deploy_once key "c0ffee"

test "after the hour the next push deploys again":
    given gitlab.push branch="main" sha="c0ffee"
    expect deploy_once
    at "2024-01-01T01:00:00Z"
    given github.push branch="main" sha="c0ffee"
    expect deploy_once with sha="c0ffee"

test "two of three smoke tests promote":
    given ci.completed pipeline="smoke-eu" status="success" sha="5e5e"
    wait 30m
    given ci.completed pipeline="smoke-ap" status="success" sha="5e5e"
    expect only promote
    expect promote with sha="5e5e"

test "one smoke test alone expires":
    given ci.completed pipeline="smoke-us" status="success" sha="5e5e"
    given ci.completed pipeline="smoke-us" status="failure" sha="5e5e"
    wait 45m
    expect expired promote key "5e5e" missing eu, ap
