# TRG103: where a secret is expected, the name must be a declared secret.
secret gh_token = env "GH_TOKEN"
source github secret=gh_tokn  # expect: TRG103@22
source gitlab token=nothing  # expect: TRG103@21
action notify = http post "https://ci.example.com/hook" secret=missing  # expect: TRG103@64

on github.push run notify
on gitlab.push run notify
on git.push run notify  # the secret gh_token stays used once it is referenced:
source ci token=gh_token
on ci.completed status="success" run notify
