# TRG110: a noqa comment that leaves out no warning (a warning).
action deploy(sha) = exec "./deploy.sh" sha
on git.push branch="a/*" run deploy with <sha>  # noqa: TRG307, TRG209  # expect: TRG110@49
on git.push branch="main" run deploy with <sha>  # noqa  # expect: TRG110@50
on git.push branch="b/*" run deploy with <sha>  # noqa
