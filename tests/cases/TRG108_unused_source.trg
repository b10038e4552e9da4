# TRG108: a source declaration no rule listens to (a warning).
secret gl = env "GL_TOKEN"
secret gh = env "GH_SECRET"
source gitlab token=gl  # expect: TRG108@8
source file root="src"  # expect: TRG108
source github secret=gh
action deploy = shell "./deploy.sh"

on github.push run deploy
