# TRG403: a placeholder for a field the trigger's events do not have.
action deploy(sha) = exec "./deploy.sh" sha

on git.push branch="a" run deploy with <sah>  # expect: TRG403@40
on file.changed path ~ "src/**" run deploy with <sha>  # expect: TRG403@49
on every 1h run deploy with <branch>  # expect: TRG403@29
on git.push branch="b" run deploy with <sha> dedupe <author_name> for 1h  # expect: TRG403@53
on git.push branch="c" run deploy with <sha.x>  # expect: TRG403
on github.push branch="main" run deploy with <payload.head_commit.id>  # expect: TRG209
on all(git.push as p, git.tag as t) same <sha> within 1h run deploy with <p.shaa>  # expect: TRG403@74
