# TRG410: a string exec passes as written, which only a shell would split or expand (a warning).
action build = exec "make build"  # expect: TRG410@21
action tool = exec "/opt/My App/bin/tool"
action deploy(sha) = exec "./deploy.sh" "$sha"  # expect: TRG410@41
action note(text) = exec "./note.sh" text
on git.push run build
on git.push run tool
on git.push run deploy with <sha>
on git.push run note with "{{sha}}"  # expect: TRG410@27
on git.push branch="dev" run note with "$HOME"
