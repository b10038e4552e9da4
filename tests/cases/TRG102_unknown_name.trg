# TRG102: a bare name used as a value must be a let.
let main = "main"
action deploy(stage) = exec "./deploy.sh" stage

on git.push branch=mian run deploy with main  # expect: TRG102@20
on git.push branch in [main, relase] run deploy with "x"  # expect: TRG102@30
on git.push branch="a" run deploy with stagee  # expect: TRG102@40
let loop = loop  # expect: TRG102@12
