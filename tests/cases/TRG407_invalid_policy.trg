# TRG407: an invalid policy value.
let many = "3"
action deploy = shell "./deploy.sh"

on git.push branch="a" run deploy busy wait  # expect: TRG407@40
on git.push branch="b" run deploy retry 1.5  # expect: TRG407@41
on git.push branch="c" run deploy retry -1  # expect: TRG407@41
on git.push branch="d" run deploy retry 1000  # expect: TRG407@41
on git.push branch="e" run deploy retry many  # expect: TRG407@41
on git.push branch="f" run deploy busy restart retry 3 backoff 10s
