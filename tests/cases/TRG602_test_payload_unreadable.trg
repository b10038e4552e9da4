# TRG602: a test's payload file is missing, or is not JSON (this file is not).
secret gh = env "GITHUB_WEBHOOK_SECRET"
source github secret=gh
action deploy(sha) = exec "./deploy.sh" sha

deploy_main: on github.push branch="main" run deploy with <sha>

test "a payload that is not there":
    given github.push from "payloads/no-such-delivery.json"  # expect: TRG602@28
    expect deploy_main

test "a payload that is not JSON":
    given github.push from "TRG602_test_payload_unreadable.trg"  # expect: TRG602@28
    expect deploy_main
