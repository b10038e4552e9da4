# Webhooks of every provider and CI completions, each route with its own verification.

secret gh = env "GH_SECRET"
secret gl = env "GL_TOKEN"
secret ci_key = env "CI_HMAC"
secret status_token = env "STATUS_TOKEN"

source github secret=gh
source gitlab path="/gitlab/hook" token=gl
source ci hmac=ci_key header="X-CI-Signature"
source http path="/status" token=status_token host="0.0.0.0"

action release(tag) = exec "./release.sh" tag
action notify(text) = http post "http://127.0.0.1:9000/notify"

gh_release: on github.release action="published" prerelease=false run release with <tag>
gl_tag: on gitlab.tag_push tag ~ /^v\d+\.\d+\.\d+$/ run release with <tag>
green: on ci.completed status="success" branch="main" run notify with "CI is green"
red: on ci.completed status in ["failure", "cancelled"] run notify with <url> retry 3
status_any: on http.request path="/status" run notify with <method>
status_get: on http.get path="/status" run notify with "get"
