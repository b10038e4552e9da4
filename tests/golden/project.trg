# A project's automation: git, files, GitHub, schedules and a plain HTTP hook in one file.

let bots = ["dependabot[bot]", "renovate[bot]"]

secret gh = env "GITHUB_WEBHOOK_SECRET"
secret hook_token = env "HOOK_TOKEN"
secret orchestrator = file "secrets/orchestrator.key"

source github path="/hooks/github" secret=gh
source http path="/hooks/*" token=hook_token port=9000
source file ignore=["build/**", "*.log"]

action deploy(sha, stage="staging") = exec "./scripts/deploy.sh" "--sha" sha "--stage" stage
    cwd "ops" env DEPLOY_LOG="deploy.log"
action test(paths) = shell "pytest -q"
action docs = exec "make" "-C" "docs" "html"
action handoff = http post "https://ci.example.com/runs" secret=orchestrator
action nightly(kind="full") = exec "./scripts/build.sh" kind

# git: the repository this file lives in
deploy_main: on git.push branch="main" author not in bots run deploy with <sha>, "prod"
    timeout 10m retry 2 backoff 30s
deploy_release: on git.push branch ~ "release/*" run deploy with sha=<sha> busy restart

# files
tests: on file.changed path ~ ["src/**/*.py", "tests/**/*.py"] run test with <paths> debounce 500ms
docs: on file.modified path ~ "docs/**/*.md" not path ~ "docs/_build/**" run docs busy skip

# GitHub
pr: on github.pull_request action in ["opened", "synchronize"] labels="deploy-preview" draft=false
    run handoff dedupe <payload.pull_request.head.sha> for 1h

# schedules
nightly: on cron "30 2 * * *" tz "Europe/Paris" run nightly timeout 2h
quick: on every 15m run nightly with "quick" busy skip

# a plain HTTP hook, protected by the token of the /hooks/* declaration
manual: on http.post path="/hooks/deploy" has payload.sha run deploy with <payload.sha>, <query.stage>
