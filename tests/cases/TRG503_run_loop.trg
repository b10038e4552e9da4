# TRG503: run.* rules whose runs can start each other again without end (a warning).
# Conditions on rule= and action= decide; any other condition might hold.
action t = shell "true"
action t2 = shell "true"
action n = shell "true"
action notify = shell "true"

on_fail: on run.failed action="notify" run notify  # expect: TRG503@13
b: on run.completed rule="c" run t  # expect: TRG503@7
c: on run.failed rule in ["b", "x"] run t
d: on run.completed rule="b" and status="succeeded" run n
e: on run.* rule != "e" and rule ~ "e*" run t
g: on run.completed (rule="g" or exit_code=3) and action="t2" run t2  # expect: TRG503@7
h: on run.completed not rule in ["h", "b"] run t
