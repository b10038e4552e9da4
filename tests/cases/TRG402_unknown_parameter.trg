# TRG402: a named argument the action does not declare.
action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage

on git.push branch="a" run deploy with sha=<sha>, stag="prod"  # expect: TRG402@51
on git.push branch="b" run deploy with <sha>, region="eu"  # expect: TRG402@47
