# Deploy when main moves.
#
# Watches the git repository this file lives in (no hook to install: triggerc watches
# the refs), and deploys every commit that lands on main, except the bots' own.
# Pushes to release branches go to staging.

let bots = ["dependabot[bot]", "renovate[bot]"]

action deploy(sha, stage="staging") = exec "./scripts/deploy.sh" "--sha" sha "--stage" stage
    env DEPLOY_LOG="deploy.log"

# A push to main deploys that commit to production. A second push while a deploy is
# still running waits for it (busy queue, the default); a stuck deploy is stopped.
deploy_main: on git.push branch="main" author not in bots
    run deploy with <sha>, "prod" timeout 10m retry 2 backoff 30s

# Release branches deploy to staging; the newest push wins over a running deploy.
deploy_release: on git.push branch ~ "release/*" run deploy with sha=<sha> busy restart
