# TRG001: a syntax error costs one declaration; the declarations around it are still read.
action deploy = shell "./deploy.sh"

on git.push branch= run deploy  # expect: TRG001@21
on git.push branch="a" run deploy
let on = "reserved"  # expect: TRG001@5
let 3x = 1  # expect: TRG001@5
on git.push branch="b" "c" run deploy  # expect: TRG001@24
on git.push branch @ "d" run deploy  # expect: TRG001@20
on git.push branch="e run deploy  # expect: TRG001@20
on git.push sha=<sha> run deploy  # expect: TRG001@17
action broken(a b) = shell "x"  # expect: TRG001@17
on git.push message ~ /unclosed run deploy  # expect: TRG001@23
on git.push branch="f"
    run deploy deploy  # expect: TRG001@16
on git.push branch="g" run deploy
on every 1d tz "Europe/Paris" run deploy  # expect: TRG001@13
