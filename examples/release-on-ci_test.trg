# Tests of release-on-ci.trg. GitHub's workflow_run and check_suite deliveries give two
# events each (github.EVENT and ci.completed); the expectations cover both.

test "a successful pipeline for a version tag releases it":
    given ci.completed status="success" tag="v1.4.2" sha="3484a3fb" url="https://ci.example/runs/7"
    expect only release
    expect release with tag="v1.4.2", sha="3484a3fb", url="https://ci.example/runs/7"

test "a generic CI POST for a version tag releases it":
    given ci.completed from "payloads/ci-tag-success.json"
    expect only release
    expect release with tag="v1.4.2", sha="3484a3fb816e0859fd6e1cea078d76385ff50625"

test "tags that are not versions are not released":
    given ci.completed status="success" tag="nightly-2024-05-01" sha="3484a3fb"
    expect none

test "a failure on main is noted":
    given ci.completed status="failure" branch="main" sha="3484a3fb"
    expect only notify_failure
    expect notify_failure with text="CI failed on main"

test "the real workflow_run delivery (a branch build) releases nothing":
    given github.workflow_run from "payloads/github-workflow_run-completed.json"
    expect none

test "the real check_suite delivery releases nothing":
    given github.check_suite from "payloads/github-check_suite-completed.json"
    expect not release
    expect not notify_failure
