# TRG003: invalid escapes in strings (raw strings have none).
action deploy(stage) = exec "./deploy.sh" stage

on git.push branch="a\qb" run deploy with "x"  # expect: TRG003@22
on git.push branch="\u{zz}" run deploy with "y"  # expect: TRG003@21
on git.push branch="\u{110000}" run deploy with "z"  # expect: TRG003@21
on git.push branch="ok\u{1F600}" run deploy with "\k"  # expect: TRG003@51
on git.push branch=r"raw\q is fine" run deploy with "w"
on git.push branch="\u{41" run deploy with "v"  # expect: TRG003@21
# two strings with different bad escapes are not the same string (no TRG502 below)
on git.push author="\u{zz}" run deploy with "u"  # expect: TRG003@21
on git.push author="\u{110000}" run deploy with "u"  # expect: TRG003@21
