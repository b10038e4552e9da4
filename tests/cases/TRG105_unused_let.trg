# TRG105: a let no rule uses (a warning).
let main = "main"
let unused = "dev"  # expect: TRG105@5
let also_unused = [1, 2]  # expect: TRG105
action deploy = shell "./deploy.sh"

on git.push branch=main run deploy
