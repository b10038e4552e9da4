#!/bin/sh
# Stand-in for a real merge step: prints what it was asked to do and what triggered it.
# A correlation's run gets the correlation.fired event as its TRG_EVENT_*, the group's id as
# TRG_GROUP_ID, and {"correlation": {rule, group, keys, members, ...}} on stdin.
echo "merge: $* (run $TRG_RUN_ID of rule $TRG_RULE, group $TRG_GROUP_ID)"
