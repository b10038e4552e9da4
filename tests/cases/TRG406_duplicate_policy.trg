# TRG406: each policy appears at most once per rule.
action deploy = shell "./deploy.sh"

on git.push branch="a" run deploy timeout 1m timeout 2m  # expect: TRG406@46
on git.push branch="b" run deploy busy skip retry 2 busy queue  # expect: TRG406@53
on git.push branch="c" run deploy
    debounce 1s
    debounce 2s  # expect: TRG406@5
