# TRG109: a secret never becomes a value (it could reach argv, logs or the manifest).
secret token = env "API_TOKEN"
let leaked = token  # expect: TRG109@14
action deploy(key) = exec "./deploy.sh" key

on git.push branch=token run deploy with leaked  # expect: TRG109@20
on git.push branch="main" run deploy with token  # expect: TRG109@43
on git.push branch="dev" run deploy with key=token  # expect: TRG109@46
