# TRG501: a rule whose conditions contradict each other can never match.
let envs = ["prod", "staging"]
action deploy = shell "./deploy.sh"

on git.push branch="a" branch="b" run deploy  # expect: TRG501@24
on git.push branch in ["a", "b"] branch in ["c"] run deploy  # expect: TRG501@34
on git.push branch="x" branch!="x" run deploy  # expect: TRG501@24
on git.push branch="prod" branch in envs branch="dev" run deploy  # expect: TRG501@42
on git.push branch="dev" branch in envs run deploy  # expect: TRG501@13
on git.push files ~ "a/**" files ~ "b/**" run deploy
on git.push branch="a" or branch="b" run deploy
on all(git.push branch="a" branch="b" as p, git.tag as t) within 1h run deploy  # expect: TRG501@28
