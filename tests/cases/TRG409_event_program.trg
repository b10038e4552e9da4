# TRG409: an exec action's program filled from the event (a warning), unless the filter pins it.
secret hook = env "HOOK_TOKEN"
source http token=hook
action tool(program, arg) = exec program arg
action fixed(arg) = exec "./tool" arg

on http.post path="/a" run tool with <payload.program>, <payload.arg>  # expect: TRG409@38
on http.post path="/b" run tool with arg=<payload.arg>, program=<headers.x-tool>  # expect: TRG409@65
on http.post path="/c" payload.program in ["./build", "./test"] run tool with <payload.program>, <payload.arg>
on http.post path="/d" run tool with "./build", <payload.program>
on http.post path="/e" run fixed with <payload.program>
