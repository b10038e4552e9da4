# TRG206: an HTTP rule pins its route with path= or a path ~ glob.
secret tok = env "HOOK_TOKEN"
source http token=tok
action deploy = shell "./deploy.sh"

on http.post run deploy  # expect: TRG206@4
on http.request method="POST" run deploy  # expect: TRG206
on http.post path="hooks/x" run deploy  # expect: TRG206@19
on http.post (path="/a" or path="/b") run deploy  # expect: TRG206
on http.post path ~ "/hooks/*" run deploy
