# A generic HTTP rule pinned to the GitHub webhook's route would be silently shadowed.
secret gh = env "GH_SECRET"
secret tok = env "TOKEN"
source github secret=gh
source http path="/github" token=tok
action a = exec "true"
on github.push run a
on http.post path="/github" run a  # expect: TRG210
