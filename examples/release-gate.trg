# Correlation triggers (SPEC §11): several events for the same commit, within a window.
#
# GitHub reports each Actions workflow as a workflow_run webhook; GitLab mirrors the
# repository and reports its pushes too; the regional smoke tests POST to /ci.

secret github_hook = env "GITHUB_WEBHOOK_SECRET"
secret gitlab_token = env "GITLAB_WEBHOOK_TOKEN"
secret ci_token = env "CI_WEBHOOK_TOKEN"

source github path="/hooks/github" secret=github_hook
source gitlab path="/hooks/gitlab" token=gitlab_token
source ci path="/ci" token=ci_token

action deploy(sha, stage="staging") = exec "./scripts/deploy.sh" "--sha" sha "--stage" stage
action promote(sha) = exec "./scripts/promote.sh" sha

# Build, test and e2e all green for the same commit on main, within two hours of the
# first: deploy it to staging, once per commit.
release_gate: on all(
        github.workflow_run workflow="build" conclusion="success" branch="main" as build,
        github.workflow_run workflow="test" conclusion="success" branch="main" as test,
        github.workflow_run workflow="e2e" conclusion="success" branch="main" as e2e,
    ) same <sha> within 2h
    run deploy with <sha>, "staging" dedupe <sha> for 7d

# GitHub and GitLab both report a push to main: deploy it once (the second report, within
# the hour, is absorbed).
deploy_once: on any(
        github.push branch="main" as gh,
        gitlab.push branch="main" as gl,
    ) same <sha> within 1h
    run deploy with <sha>, "prod"

# Two of the three regional smoke tests green for the same commit: promote it.
promote: on 2 of (
        ci.completed pipeline="smoke-eu" status="success" as eu,
        ci.completed pipeline="smoke-us" status="success" as us,
        ci.completed pipeline="smoke-ap" status="success" as ap,
    ) same <sha> within 45m
    run promote with <sha>
