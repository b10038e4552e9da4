# TRG002: a declaration that stops before it is complete.
action deploy = shell "./deploy.sh"

on git.push branch="main"  # expect: TRG002@25
let empty =  # expect: TRG002@11
on git.push branch in ["a", "b"  # expect: TRG002@31
on git.push branch="next" run deploy
source github path=  # expect: TRG002
on git.push branch="dev"
    and author="x"  # expect: TRG002@18
on git.push branch="f" run deploy with  # expect: TRG002@35
on git.push branch="g" run deploy timeout  # expect: TRG002
on git.push branch="h"
    run deploy with  # expect: TRG002
on git.push branch="i" or  # expect: TRG002@24
on git.push branch="j"
    and  # expect: TRG002@5
on git.push not  # expect: TRG002@13
on git.push branch not  # expect: TRG002@22
