# Tests of pr-labels.trg, with real GitHub deliveries from payloads/ (see its README).
# Fields written before `from` are laid over the delivery: one real payload, varied.

test "the real labeled delivery (label: bug) builds no preview":
    given github.pull_request from "payloads/github-pull_request-labeled.json"
    expect none

test "the deploy-preview label builds a preview":
    given github.pull_request labels=["deploy-preview"] from "payloads/github-pull_request-labeled.json"
    expect only preview

test "new commits on a labeled pull request rebuild the preview":
    given github.pull_request action="synchronize" labels=["deploy-preview", "bug"] draft=false
    expect preview

test "draft pull requests get no preview":
    given github.pull_request labels=["deploy-preview"] draft=true from "payloads/github-pull_request-labeled.json"
    expect not preview

test "a docs pull request gets a comment":
    given github.pull_request labels=["docs"] from "payloads/github-pull_request-opened.json"
    expect only docs_only
    expect docs_only with number=2, text="Docs change: no preview needed."

test "a docs pull request that needs review gets no comment":
    given github.pull_request labels=["docs", "needs-review"] from "payloads/github-pull_request-opened.json"
    expect none

test "the real opened delivery (label: bug) gets no comment":
    given github.pull_request from "payloads/github-pull_request-opened.json"
    expect not docs_only
