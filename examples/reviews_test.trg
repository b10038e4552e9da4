# Tests of reviews.trg.

test "an approval and green CI on the reviewed commit merge it":
    given github.pull_request_review state="approved" number=42 sha="c0ffee" author="ann"
    wait 3h
    expect open merge_ready key "c0ffee" missing ci
    given github.check_suite conclusion="success" app="github-actions" sha="c0ffee"
    expect only merge_ready
    expect merge_ready with number=42, sha="c0ffee"

test "green CI on another commit than the reviewed one does not merge":
    given github.pull_request_review state="approved" number=42 sha="c0ffee"
    given github.check_suite conclusion="success" app="github-actions" sha="beef00"
    expect none
    wait 1d
    expect expired merge_ready key "c0ffee" missing ci
    expect expired merge_ready key "beef00" missing review

test "a pull request without a review for a day is reported":
    given github.pull_request action="opened" draft=false number=7 url="https://github.example/pr/7"
    wait 23h
    expect none
    wait 1h
    expect only stale_pr
    expect stale_pr with url="https://github.example/pr/7"

test "a review within the day keeps it quiet":
    given github.pull_request action="opened" draft=false number=7
    wait 5h
    given github.pull_request_review state="commented" number=7
    wait 1d
    expect none

test "draft pull requests are not waited for":
    given github.pull_request action="opened" draft=true number=8
    wait 2d
    expect none
