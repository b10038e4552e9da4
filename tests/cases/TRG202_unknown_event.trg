# TRG202: a closed source (git, file, http, ci, run, schedule) has a fixed set of events.
action deploy = shell "./deploy.sh"

on git.pull branch="main" run deploy  # expect: TRG202@8
on file.changd path ~ "src/**" run deploy  # expect: TRG202@9
on ci.finished run deploy  # expect: TRG202
on run.succeeded run deploy  # expect: TRG202
on git.push run deploy
