# GitLab: deploy when a pipeline on main succeeds, tag images on tag pushes.
#
# GitLab sends the webhook's secret token in X-Gitlab-Token; triggerc compares it in
# constant time. A redelivery with the same Idempotency-Key (else X-Gitlab-Event-UUID)
# creates no second run.

secret gitlab_token = env "GITLAB_WEBHOOK_TOKEN"
source gitlab path="/gitlab" token=gitlab_token

action deploy(sha, env="staging") = exec "./scripts/deploy.sh" "--sha" sha "--stage" env
action tag_image(tag, sha) = exec "./scripts/tag-image.sh" tag sha

# The pipeline event itself, with GitLab's own fields.
deploy_main: on gitlab.pipeline status="success" branch="main" source != "schedule"
    run deploy with <sha>, "prod"

# Tag pushes of release versions (not deletions: GitLab sends all zeros as the sha).
tag_image: on gitlab.tag_push tag ~ "v*" sha !~ /^0+$/ run tag_image with <tag>, <sha>

# A merge request opened against main runs the contract tests (GitLab sends no list of
# changed files with it, so every one does).
contracts: on gitlab.merge_request action="open" base="main"
    run deploy with <sha>, "contract-tests"
