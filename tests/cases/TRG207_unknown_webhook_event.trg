# TRG207: an event name the provider is not known to send (a warning: github and gitlab are open).
secret gh = env "GH_SECRET"
secret gl = env "GL_TOKEN"
source github secret=gh
source gitlab token=gl
action deploy = shell "./deploy.sh"

on github.pushh run deploy  # expect: TRG207@11
on github.pull_requests run deploy  # expect: TRG207
on gitlab.merge_requests run deploy  # expect: TRG207@11
on github.push run deploy
