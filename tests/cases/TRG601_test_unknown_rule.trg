# TRG601: a test names a rule the file does not have.
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage

deploy_main: on git.push branch="main" run deploy with <sha>, "prod"
nightly: on every 1d run deploy with "HEAD"

test "a typo in expect":
    given git.push branch="main" sha="abc"
    expect deploy_mian  # expect: TRG601@12
    expect not deploy_staging  # expect: TRG601@16

test "a typo in expect only":
    given git.push branch="main" sha="abc"
    expect only deploy_main, deploy_mainn  # expect: TRG601@30

test "a tick of a rule that does not exist":
    given schedule.tick rule="nighty"  # expect: TRG601@25
    expect nightly
