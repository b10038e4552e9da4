# TRG101: names of lets, secrets, actions and labels are each unique in a file.
let stage = "prod"
let stage = "dev"  # expect: TRG101@5
secret gh = env "GH_SECRET"
secret gh = env "OTHER"  # expect: TRG101@8
source github secret=gh
action deploy(stage) = exec "./deploy.sh" stage
action deploy = shell "echo again"  # expect: TRG101@8

ship: on github.push branch="main" run deploy with stage
ship: on github.push branch="dev" run deploy with "dev"  # expect: TRG101@1
