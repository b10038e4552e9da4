# React to GitHub pull requests by label, and hand the work to an orchestrator.
#
# GitHub signs every delivery with the webhook secret (X-Hub-Signature-256); triggerc
# checks it in constant time before anything else, and answers 401 when it fails.

secret gh = env "GITHUB_WEBHOOK_SECRET"
secret orchestrator = env "ORCHESTRATOR_SECRET"

source github path="/github" secret=gh

# POSTs {run_id, rule, action, inputs, event}, signed with X-Triggerlang-Signature.
action preview = http post "http://127.0.0.1:9000/runs" secret=orchestrator

action comment(number, text) = exec "./scripts/comment.sh" number text

# A "deploy-preview" label on an open, non-draft pull request builds a preview.
preview: on github.pull_request
    action in ["labeled", "synchronize"]
    labels="deploy-preview"
    draft=false
    run preview busy skip

# Pull requests that touch docs only get a friendly comment instead of a full build.
docs_only: on github.pull_request action="opened" labels ~ "docs*" not labels="needs-review"
    run comment with <number>, "Docs change: no preview needed."
