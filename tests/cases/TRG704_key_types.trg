# TRG704: position i of the key has another type in another member (int is not str).
secret gh = env "GH_SECRET"
secret jira = env "JIRA_TOKEN"
source github secret=gh
source http path="/hooks/jira" token=jira
action d = shell "true"

on all(git.push key <commits>, git.tag key <sha>) within 1h run d  # expect: TRG704@44
on all(github.pull_request action="closed" merged=true as pr,
       http.post path="/hooks/jira" as ticket key <query.pr>) same <number> within 1d run d  # expect: TRG704@51
on all(git.push key (<sha>, <commits>), git.tag key (<sha>, <branch>)) within 1h run d  # expect: TRG704
on all(github.pull_request as pr, github.issues as issue) same <number> within 1d run d
