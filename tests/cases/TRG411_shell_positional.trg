# TRG411: a positional parameter in a shell script, which a run never gets (a warning).
action deploy(sha) = shell "./deploy.sh $1"  # expect: TRG411@41
action all(sha, stage) = shell "./deploy.sh \"$@\""  # expect: TRG411@32
action tidy(sha) = shell "awk '{print $1}' log; echo $$; ./tidy.sh $TRG_INPUT_SHA"
action args(sha) = shell "set -- $TRG_INPUT_SHA; ./deploy.sh $1"
on git.push run deploy with <sha>
on git.push run all with <sha>, "prod"
on git.push run tidy with <sha>
on git.push run args with <sha>
