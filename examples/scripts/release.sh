#!/bin/sh
# Stand-in for a real release step: prints what it was asked to do and what triggered it.
# triggerc gives every run the event as JSON on stdin and TRG_* environment variables.
echo "release: $* (run $TRG_RUN_ID of rule $TRG_RULE, event $TRG_EVENT_SOURCE.$TRG_EVENT_TYPE)"
