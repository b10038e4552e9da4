# TRG208: an invalid option in a source declaration (or a bad env var name).
secret gh = env "GH_SECRET"
secret bad = env "NOT-VALID"  # expect: TRG208@18 TRG106
source github secret=gh path="github"  # expect: TRG208@30
source http port=99999  # expect: TRG208
source http host=1 token="plain"  # expect: TRG208 TRG208
source file rot="."  # expect: TRG208@13
source http path="/x" query="token"  # expect: TRG208@23
source http path="/y" token=gh query=""  # expect: TRG208@38
source http path="/z" standard=gh header="X-Token"  # expect: TRG208@35
source file ignore=["[a"] root="." root="x"  # expect: TRG208 TRG210 TRG302
action deploy = shell "./deploy.sh"

on github.push run deploy
on file.changed path ~ "src/**" run deploy
on http.post path="/x" run deploy
