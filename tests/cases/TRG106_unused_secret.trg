# TRG106: a secret nothing refers to (a warning).
secret gh = env "GH_SECRET"
secret spare = file "/run/secrets/spare"  # expect: TRG106@8
source github secret=gh
action deploy = shell "./deploy.sh"

on github.push run deploy
