# TRG307: a '*' in a string compared exactly (= != in, not in), where it is a literal '*' (a warning).
action build(sha) = exec "./build.sh" sha

on git.push branch="release/*" run build with <sha>  # expect: TRG307@13
on git.push branch != "wip/**" run build with <sha>  # expect: TRG307@13
on git.push branch in ["main", "hotfix/*"] run build with <sha>  # expect: TRG307@13
on git.push files not in ["docs/**"] run build with <sha>  # expect: TRG307@13
on git.push branch ~ "release/*" branch !~ "wip/**" run build with <sha>
on github.push payload.scope="*" run build with <sha>  # expect: TRG209@4
on github.push payload.scope in ["*", "all"] run build with <sha>
on git.push branch in ["main", "dev"] run build with <sha>
