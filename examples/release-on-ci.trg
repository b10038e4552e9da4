# Start the release job when the CI pipeline for a version tag succeeds.
#
# GitHub Actions reports completions as workflow_run (and check_suite) webhooks, GitLab
# as pipeline webhooks; triggerc turns both into ci.completed events. Other CI systems
# POST {"pipeline", "status", "tag"|"branch", "sha", "url"} to /ci with the token.

secret github_hook = env "GITHUB_WEBHOOK_SECRET"
secret ci_token = env "CI_WEBHOOK_TOKEN"

source github path="/hooks/github" secret=github_hook
source ci path="/ci" token=ci_token

let version_tag = /^v\d+\.\d+\.\d+$/

action release(tag, sha, url) = exec "./scripts/release.sh" tag sha url

# A successful pipeline for a tag like v1.4.2 releases it, once per tag per day
# (GitHub reports one Actions run twice: as workflow_run and as check_suite).
release: on ci.completed status="success" tag ~ version_tag
    run release with <tag>, <sha>, <url> dedupe <tag> for 1d timeout 30m

# Someone should look at a failed pipeline on main.
notify_failure: on ci.completed status="failure" branch="main"
    run notify with text="CI failed on main"

action notify(text) = shell "echo \"$TRG_INPUT_TEXT\" >> ci-failures.log"
