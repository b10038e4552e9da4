# Local only: a bare repository and a folder of configuration; no HTTP listener at all.

source git poll=1s

action reload = shell "systemctl --user reload app"
action mirror(ref, sha) = exec "./mirror.sh" ref sha

mirror: on git.push repo="/srv/git/app.git" run mirror with <ref>, <sha>
tags: on git.tag repo="/srv/git/lib.git" tag ~ "v*" run mirror with <ref>, <sha>
config: on file.changed path = "config/app.yaml" run reload debounce 2s
