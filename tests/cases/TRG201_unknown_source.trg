# TRG201: the source of a trigger or a source declaration must be in the catalogue.
action deploy = shell "./deploy.sh"

on gti.push branch="main" run deploy  # expect: TRG201@4
on jenkins.* run deploy  # expect: TRG201@4
source githb path="/gh"  # expect: TRG201@8
source dashboard port=1  # expect: TRG201@8
on git.push run deploy
