# TRG302: an invalid glob (an unclosed or reversed character class).
source file ignore=["build/[ab"]  # expect: TRG302@20
action deploy = shell "./deploy.sh"

on file.changed path ~ "src/[abc" run deploy  # expect: TRG302@24
on file.changed path !~ ["docs/**", "[z-a]*"] run deploy  # expect: TRG302@25
on file.changed path ~ "src/[!.]*.py" run deploy
secret hook_token = env "HOOK_TOKEN"
source http path="/hooks/[ab" token=hook_token  # expect: TRG302@18
on http.post path="/hooks/a" run deploy  # expect: TRG209@4
