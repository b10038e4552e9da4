# Tests of absence.trg. Times are UTC; Paris is UTC+1 in winter, UTC+2 in summer.

test "no nightly success by 06:00 pages at 06:00 Paris time":
    at "2024-01-01T05:59:00+01:00"
    expect none
    at "2024-01-01T06:00:00+01:00"
    expect only nightly_missing
    expect nightly_missing with text="nightly did not succeed by 06:00", since="2024-01-01T01:30:00.000Z"

test "a successful nightly inside the window pages nobody":
    at "2024-01-01T03:10:00+01:00"
    expect open nightly_missing
    given ci.completed pipeline="nightly" status="success" sha="n1"
    at "2024-01-01T07:00:00+01:00"
    expect none

test "a nightly success before the window opens does not count":
    at "2024-01-01T02:00:00+01:00"
    given ci.completed pipeline="nightly" status="success" sha="n1"
    at "2024-01-01T06:00:00+01:00"
    expect nightly_missing

test "after the change to summer time the window follows Paris":
    at "2024-04-02T03:00:00+02:00"
    expect nightly_missing
    given ci.completed pipeline="nightly" status="failure" sha="n1"
    at "2024-04-02T05:59:00+02:00"
    expect none
    at "2024-04-02T06:00:00+02:00"
    expect nightly_missing

test "a silent host pages once, five minutes after its last heartbeat":
    given http.post path="/hooks/heartbeat" query.host="web1"
    wait 3m
    given http.post path="/hooks/heartbeat" query.host="web1"
    wait 4m
    expect none
    expect open host_silent key "web1"
    wait 1m
    expect only host_silent
    expect host_silent with host="web1"
    wait 1h
    expect none

test "each host has its own quiet period":
    given http.post path="/hooks/heartbeat" query.host="web1"
    wait 2m
    given http.post path="/hooks/heartbeat" query.host="web2"
    wait 3m
    expect only host_silent
    expect host_silent with host="web1"
    wait 2m
    expect host_silent with host="web2"
