# TRG301: an invalid regex is reported at its own position.
let bad = /[z-a]/  # expect: TRG301@11
action deploy = shell "./deploy.sh"

on git.push message ~ /(unclosed/ run deploy  # expect: TRG301@23
on git.push branch ~ [/ok/, /*oops/] run deploy  # expect: TRG301@29
on git.push branch ~ bad run deploy
on git.push message ~ /a\/b/i run deploy
# flags other than i, m and s (the lexer reads /fix/ and then a name g: said at the flags)
on git.push message ~ /fix/g run deploy  # expect: TRG301@28
on git.push message ~ /fix/imx branch="main" run deploy  # expect: TRG301@28
