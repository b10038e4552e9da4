#!/bin/sh
# Stand-in for a real tag-image step: prints what it was asked to do and what triggered it.
# triggerc gives every run the event as JSON on stdin and TRG_* environment variables.
echo "tag-image: $* (run $TRG_RUN_ID of rule $TRG_RULE, event $TRG_EVENT_SOURCE.$TRG_EVENT_TYPE)"
