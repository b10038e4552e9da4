# TRG714: test timing: wait that does not move the clock, at going back in time (or not a
# time), expect open/expired on a rule that is not a correlation.
action d = shell "true"

gate: on all(git.push as p, git.tag as t) same <sha> within 1h run d
plain: on git.push run d

test "timing":
    wait 0s  # expect: TRG714@10
    at "2023-12-31T00:00:00Z"  # expect: TRG714
    at "not a time"  # expect: TRG714
    given git.push sha="a"
    wait 10m
    at "2024-01-01T00:10:00Z"
    expect open plain  # expect: TRG714@17
    expect open gate key "a" missing t

test "the clock stops at the year 9000":
    at "9000-01-02T00:00:00Z"  # expect: TRG714
    at "8999-12-31T00:00:00Z"
    wait 2d  # expect: TRG714@10
    wait 1d
    expect none
