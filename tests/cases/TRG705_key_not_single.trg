# TRG705: a key must be one value: not a list (files, labels) nor a map (headers, inputs).
secret gh = env "GH_SECRET"
source github secret=gh
action d = shell "true"

on all(git.push, git.tag) same <files> within 1h run d  # expect: TRG705@32
on all(github.push as a, github.release as b) same <headers> within 1h run d  # expect: TRG705
on all(run.completed as a, run.failed as b) same <inputs> within 1h run d  # expect: TRG705
on all(git.push key <files>, git.tag key <sha>) within 1h run d  # expect: TRG705
