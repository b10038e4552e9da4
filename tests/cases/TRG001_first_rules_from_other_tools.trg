# TRG001: first rules in other tools' spellings, each one diagnostic with the text to write
# (tests/test_checker.py's first-rule table pastes each hint; this file seeds the fuzzer)
secret gh = env "GH"
source github secret=gh
source http token=gh
action build = exec "make"
action deploy(sha, stage="dev", flags=[]) = exec "./deploy.sh" sha stage flags
action mk = exec "make" "build" && exec "make" "test"  # expect: TRG001@13
action logs(sha) = exec "./gen.sh" sha > "out file.log"  # expect: TRG001@20
action a1 = ./deploy.sh --prod  # expect: TRG001@13
action a2 = exec ["make", "build"]  # expect: TRG001@18
action a3: exec "make"  # expect: TRG001@10
let bots = dependabot, renovate  # expect: TRG001@12
on git.push author in bots run mk
on git.push run logs with <sha>
on git.push run a1
on git.push run a2
on git.push run a3
on git.push {"branch": "main", "forced": false} run deploy with <sha>  # expect: TRG001@13
on git.push run deploy with sha=<sha> --stage prod --force  # expect: TRG001@29
on git.push branch is "main" run build  # expect: TRG001@20
on git.push branch like "release/%" run build  # expect: TRG001@20
on git.push run deploy with <sha> > deploy.log 2>&1  # expect: TRG001@35
on git.push run build &  # expect: TRG001@23
on git.push run build; timeout 5m  # expect: TRG001@22
on git.push run build if branch="main"  # expect: TRG001@1
on github.push if: ${{ github.ref == 'refs/heads/main' && !contains(github.event.head_commit.message, '[skip ci]') }} run build  # expect: TRG001@16
on github.push branches-ignore: [main, dev] run build  # expect: TRG001@16
on every day at "03:00" run build  # expect: TRG001@4
on every monday run build  # expect: TRG304@4
on OnCalendar="Mon..Fri 03:00" run build  # expect: TRG001@4
on cron "0 3 * * *" timezone "Europe/Paris" run build  # expect: TRG001@21
on every 1h Persistent=true run build  # expect: TRG203@13
on git.push run build every 5m  # expect: TRG001@23
on file.changed -e py,toml -w ./src run build  # expect: TRG001@17
on file.changed run build --on-busy-update=restart  # expect: TRG001@27
on git.push branch in ["main" "dev"] run build  # expect: TRG001@24
on git.push run deploy with sha: <sha>  # expect: TRG001@29
on git.push run deploy with $(git rev-parse --short HEAD)  # expect: TRG001@29
on git.push run build timeout-minutes: 10  # expect: TRG001@23
on http.post id="redeploy" run build  # expect: TRG203@14
on http.post path="/hooks/x" trigger-rule: {"match": {"type": "value", "value": "main", "parameter": {"source": "payload", "name": "ref"}}} run build  # expect: TRG001@30
on git.push run build busy restart signal SIGHUP  # expect: TRG001@36
on git.push run deploy with $1  # expect: TRG001@29
on git.push branch="main" or run build  # expect: TRG001@27
on git.push run build with timeout 5m  # expect: TRG001@23
