# TRG603: a test that cannot mean anything.
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage

deploy_main: on git.push branch="main" run deploy with <sha>, "prod"
nightly: on every 1d run deploy with "HEAD"

test "from is for webhook payloads":
    given git.push from "push.json"  # expect: TRG603@25
    expect deploy_main

test "a test event has one type":
    given git.* branch="main"  # expect: TRG603@15
    expect deploy_main

test "a tick says whose it is":
    given schedule.tick  # expect: TRG603@11
    expect nightly

test "a field given twice":
    given git.push branch="main" branch="dev"  # expect: TRG603@34
    expect deploy_main

test "expect with compares values":
    given git.push branch="main" sha="abc"
    expect deploy_main with sha=<sha>  # expect: TRG603@33

test "contradictions":
    given git.push branch="main" sha="abc"
    expect deploy_main
    expect not deploy_main  # expect: TRG603@5
