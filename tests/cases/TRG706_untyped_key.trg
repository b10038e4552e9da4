# TRG706 (warning): a key on an untyped path is compared as a JSON scalar, without coercion.
secret t = env "HOOK_TOKEN"
source http path="/hooks/*" token=t
action d = shell "true"

on all(http.post path="/hooks/a" as a, http.post path="/hooks/b" as b) same <payload.tag> within 1h run d  # expect: TRG706@77
on all(http.post path="/hooks/a" as a, http.post path="/hooks/b" as b) same <query.tag> within 1h run d
