# TRG306: a glob in GitHub Actions' filter syntax, where it means something else (a warning).
action build(sha) = exec "./build.sh" sha

on git.push branch ~ ["releases/**", "!releases/**-alpha"] run build with <sha>  # expect: TRG306@22
on git.tag tag ~ "v[0-9]+.[0-9]+.[0-9]+" run build with <sha>  # expect: TRG306@18
on git.push files !~ "!docs/**" run build with <sha>  # expect: TRG306@22
on git.tag tag ~ /^v[0-9]+\.[0-9]+\.[0-9]+$/ run build with <sha>
on git.push branch ~ "releases/**" branch !~ "releases/**-alpha" run build with <sha>
on git.push branch ~ "\\!odd" files ~ "lib/c++/**" run build with <sha>
