# A schedule tick is addressed to the rule whose every/cron made it: a rule cannot
# listen to schedule.tick by name (it could never fire).
action a = exec "true"
on schedule.tick run a  # expect: TRG202
on every 5m run a
