# TRG405: a bare name in an exec argv must be one of the action's parameters.
let version = "1.0"  # expect: TRG105@5
action deploy(sha) = exec "./deploy.sh" sha stage  # expect: TRG405@45
action build = exec "make" target  # expect: TRG405@28
action tag(sha) = exec "git" "tag" version sha  # expect: TRG405@36

on git.push branch="a" run deploy with <sha>
on git.push branch="b" run build
on git.push branch="c" run tag with <sha>
