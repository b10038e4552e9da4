# TRG411: a positional parameter, or a parameter or let read by its bare name, in a shell
# script, which a run never sets (a warning): its inputs are $TRG_INPUT_<NAME> only.
action deploy(sha) = shell "./deploy.sh $1"  # expect: TRG411@41
action all(sha, stage) = shell "./deploy.sh \"$@\""  # expect: TRG411@32
action tidy(sha) = shell "awk '{print $1}' log; echo $$; ./tidy.sh $TRG_INPUT_SHA"
action args(sha) = shell "set -- $TRG_INPUT_SHA; ./deploy.sh $1"
action named(sha, stage) = shell "./deploy.sh $sha ${stage:-dev} $SHA"  # expect: TRG411@47 TRG411@52
action own(sha) = shell "sha=$(git rev-parse HEAD); ./deploy.sh $sha '$stage'"
action where(sha) = shell "./deploy.sh --region $region $TRG_INPUT_SHA"  # expect: TRG411@49
let region = "eu"
on git.push run deploy with <sha>
on git.push run all with <sha>, "prod"
on git.push run tidy with <sha>
on git.push run args with <sha>
on git.push run named with <sha>, "prod"
on git.push run own with <sha>
on git.push branch=region run where with <sha>
