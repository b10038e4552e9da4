# Pull requests and their reviews (SPEC §11): an approval and green CI on the same commit,
# and a pull request nobody reviewed within a day.

secret github_hook = env "GITHUB_WEBHOOK_SECRET"
source github path="/hooks/github" secret=github_hook

action merge(number, sha) = exec "./scripts/merge.sh" "--pr" number "--sha" sha
action notify(text, url="") = exec "./scripts/notify.sh" text url

# The PR is approved and CI is green on the reviewed commit: merge it.
merge_ready: on all(
        github.pull_request_review state="approved" as review,
        github.check_suite conclusion="success" app="github-actions" as ci,
    ) same <sha> within 1d
    run merge with <review.number>, <sha>

# A pull request opened (not a draft) and not reviewed within a day: say so.
stale_pr: on absent(github.pull_request_review as review)
    after github.pull_request action="opened" draft=false as pr
    same <number> within 1d
    run notify with text="PR waiting for review", url=<pr.url>
