"""What each diagnostic code means, how to fix it, and an example that produces it.

One source of truth for the documentation of the codes: the short name of each code is
:data:`~triggerlang.check.checker.CODES`; this module adds, per code, its default
severity, a short explanation and a minimal rules file that produces it. From these two
tables come

- ``docs/diagnostics.md``, the page every code links to (``python -m
  triggerlang.check.codedocs > docs/diagnostics.md`` writes it; a test checks that the
  committed page is up to date, and that every example produces its code with that
  severity);
- the SARIF rule metadata of ``triggerc check --format sarif`` (``shortDescription``,
  ``fullDescription``, ``help``, ``helpUri``, ``defaultConfiguration``): code scanning
  shows the explanation and links to the page.

Adding a code: add it to ``CODES``, give it an entry here, a case file in
``tests/cases/``, a line in the README's table, and regenerate the page.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import PROJECT_URL
from .checker import CODES

DOCS_PAGE = "docs/diagnostics.md"
DOCS_URL = f"{PROJECT_URL}/blob/main/{DOCS_PAGE}"


class CodeDoc(NamedTuple):
    severity: str      # "error" or "warning": the severity the code is always reported with
    explanation: str   # what is wrong and how to fix it (Markdown, a few sentences)
    example: str | None  # a rules file that produces the code (None: cannot be shown as text)
    warning_cases: str = ""  # an error code whose milder cases SPEC §11.2 makes warnings: which


def _e(explanation: str, example: str | None, severity: str = "error") -> CodeDoc:
    return CodeDoc(severity, " ".join(explanation.split()), example)


def _w(explanation: str, example: str | None) -> CodeDoc:
    return _e(explanation, example, "warning")


def _ew(explanation: str, example: str | None, warning_cases: str) -> CodeDoc:
    """An error code some of whose cases are warnings (SPEC §11.2 says which)."""
    return CodeDoc("error", " ".join(explanation.split()), example, warning_cases)


def severity_text(doc: CodeDoc) -> str:
    return doc.severity + (f"; a warning for {doc.warning_cases}" if doc.warning_cases else "")


CODE_DOCS: dict[str, CodeDoc] = {
    "TRG000": _e("""A bug in triggerc, not in your rules: reading a declaration raised an unexpected
        exception. The rest of the file is still checked. Please report it with the
        declaration that caused it.""", None),
    "TRG001": _e("""The declaration does not follow the grammar: an unexpected word or character, a
        reserved word used as a name, or a value where none is allowed. Only that declaration
        is lost; the rest of the file is still read. The hint lists what was expected
        there, or, for a misspelled keyword (`rnu`, `wiht`, `debounse`), the keyword that
        makes the declaration read; for a policy written before `run`
        (`on file.changed debounce 2s run lint`), the rule with the policies after the run clause
        (both come with the fix the editor offers). A condition or argument written in another tool's
        language gets the text to write in its place: CEL's `==`, `&&`, `'quotes'`,
        `body.ref.startsWith('refs/tags/')` and `labels.exists(l, l.name == 'x')`,
        JSONPath's `$.ref` and `commits[*]`, a Tekton binding `$(body.x)`, an Argo
        template `{{ .Input.body.x }}`.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch= run deploy\n'
                 'on git.push branch="main" run deploy\n'),
    "TRG002": _e("""The declaration stops before it is complete: a rule without `run ACTION`, an
        unclosed `(` or `[`, or an option without its value. A line that starts in column 1
        begins a new declaration, so indent a continuation line.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch="main"\n'
                 'on git.push branch="dev" run deploy\n'),
    "TRG003": _e("""A string has an escape triggerlang does not know. Strings take `\\"`, `\\\\`,
        `\\n`, `\\t` and `\\u{XXXX}`; write a raw string `r"..."` to keep backslashes as
        they are.""",
                 'action deploy(stage) = exec "./deploy.sh" stage\n'
                 'on git.push branch="a\\qb" run deploy with "prod"\n'),
    "TRG004": _e("""The rules file is not valid UTF-8 (the diagnostic points at the first bad byte).
        Save it as UTF-8.""", None),
    "TRG005": _e("""An `include` names no rules file: the file does not exist (the path is read
        from the folder of the file that includes it), it is a folder (include its files
        with a glob, `include "rules.d/*.trg"`), it is not a `.trg` file or it is a
        `_test.trg` file, or a glob matches no file (an error, so that a typo does not leave
        rules out unseen). See "Rules in several files" in the README.""",
                 'include "comon.trg"\n'),
    "TRG101": _e("""Two lets, secrets, actions, rule labels or tests have the same name. Names are
        unique in a file, and in the files it includes (and a `_test.trg` file shares the names
        of the file it tests).
        Rename one of them.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'action deploy = shell "./deploy-v2.sh"\n'
                 'on git.push run deploy\n'),
    "TRG102": _e("""A bare name used as a value is not a `let` (a typo, or a string without its
        quotes). Declare it with `let NAME = VALUE`, or quote the text.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch=main run deploy\n'),
    "TRG103": _e("""Where a secret is expected (`secret=`, `token=`, `hmac=`), the name is not a
        declared secret. Declare it: `secret NAME = env "VAR"`.""",
                 'source github secret=gh\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'on github.push run deploy\n'),
    "TRG104": _e("""The rule runs an action that is not declared in the file. Declare it with
        `action NAME = ...`, or fix the name.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch="main" run deploy\n'
                 'on git.push branch="dev" run deplyo\n'),
    "TRG105": _w("""A `let` that nothing uses. Remove it, or use it in a rule.""",
                 'let stage = "prod"\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy\n'),
    "TRG106": _w("""A secret that no source or action refers to. Remove it, or use it (`secret=`,
        `token=`, `hmac=`).""",
                 'secret gh = env "GITHUB_WEBHOOK_SECRET"\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy\n'),
    "TRG107": _w("""An action that no rule runs. Run it from a rule, or remove it.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'action lint = shell "ruff check ."\n'
                 'on git.push run deploy\n'),
    "TRG108": _w("""A `source` declaration that no rule listens to: `serve` would not start it.
        Add a rule on that source, or remove the declaration.""",
                 'secret gl = env "GITLAB_TOKEN"\n'
                 'source gitlab token=gl\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy\n'),
    "TRG109": _e("""A secret used as a value (a filter value, an argument, a `let`). Secrets never
        become values: a value can reach an argv, a log or the manifest. A secret goes only
        where one is expected (`secret=`, `token=`, `hmac=`); an action that needs it reads
        its environment variable itself.""",
                 'secret token = env "API_TOKEN"\n'
                 'action deploy(key) = exec "./deploy.sh" key\n'
                 'on git.push run deploy with token\n'),
    "TRG110": _w("""A `# noqa` comment that leaves out no warning: a code it names that the
        declaration has no warning of (any more), or a bare `# noqa` on a declaration without
        warnings. A stale comment would hide the next warning of that code without anyone
        noticing. `triggerc check --fix` removes the comment, or the unused codes from it.
        Reported only for a file without errors (an error can stop the checks a comment is
        for).""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy  # noqa: TRG307\n'),
    "TRG201": _e("""The trigger's source (before the dot), or a `source` declaration's kind, is not
        in the catalogue. The hint suggests the closest one; the README lists the
        sources.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on gti.push branch="main" run deploy\n'),
    "TRG202": _e("""The source has no event of that name (`git`, `file`, `http`, `ci`, `run` and
        `schedule` have a fixed set), or the rule listens to `schedule.tick` by name (write
        the schedule itself: `on every 15m` or `on cron "..."`).""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.pull branch="main" run deploy\n'),
    "TRG203": _e("""The trigger's events have no field of that name. `check` knows every field of
        every event and suggests the closest; raw webhook data is under `payload.`,
        `headers.` and `query.` where the source carries it.""",
                 'action deploy(sha) = exec "./deploy.sh" sha\n'
                 'on git.push brnch="main" run deploy with <sha>\n'),
    "TRG204": _e("""A value of the wrong type: a string for a boolean field, a number for a string,
        a list where one value is expected (use `in [...]`), a duration where a policy takes
        one. There is no coercion: `true` is not `"true"`.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push forced="yes" run deploy\n'),
    "TRG205": _e("""The operator does not apply to the field's type: `~` takes strings, `<`/`>` take
        numbers, durations and times, a map (`headers`) needs a key (`headers.x-name`).""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch > "a" run deploy\n'),
    "TRG206": _e("""An HTTP rule must pin its route with `path="/..."` or `path ~ "/glob/*"` in its
        top-level conditions: that is the route the server listens on. The path cannot be one
        `serve` answers itself: `/healthz`, `/readyz`, `/events`, `/metrics`.""",
                 'secret tok = env "HOOK_TOKEN"\n'
                 'source http token=tok\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'on http.post run deploy\n'),
    "TRG207": _w("""An event name the provider is not known to send. A warning, not an error:
        providers add events faster than catalogues. Check the spelling of the
        `X-GitHub-Event` / `X-Gitlab-Event` name.""",
                 'secret gh = env "GITHUB_WEBHOOK_SECRET"\n'
                 'source github secret=gh\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'on github.pushh run deploy\n'),
    "TRG208": _e("""An invalid option in a `source` declaration: an option the source does not
        take, a value of the wrong type, a port out of range, a route path without a leading
        `/` or one `serve` answers itself (`/healthz`, `/readyz`, `/events`, `/metrics`), an
        environment variable name that is not valid, an `allow` entry that is not an IP address or CIDR
        range (or an empty `allow`), a `header=` with no `token=` or `hmac=` to read it, or
        two ways to verify one route (`token=` and `hmac=`: only the first would be
        checked).""",
                 'action deploy = shell "./deploy.sh"\n'
                 'source file rot="."\n'
                 'on file.changed path ~ "src/**" run deploy\n'),
    "TRG209": _w("""A webhook or HTTP route with no secret or token: anyone who can reach the port
        can trigger runs. Declare a secret and protect the route
        (`source github secret=NAME`, `source gitlab token=NAME`, `source http token=NAME`
        or `hmac=NAME`). An error under `--strict`.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on github.push branch="main" run deploy\n'),
    "TRG210": _e("""Two source declarations that cannot both hold: a source declared twice where
        only one is possible, two webhook sources on one route, two different ports or hosts
        for the one HTTP server, or an HTTP rule on a webhook's route.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'source file root="."\n'
                 'source file root="src"\n'
                 'on file.changed run deploy\n'),
    "TRG301": _e("""The regex does not compile (Python `re` syntax). The diagnostic points at the
        regex literal itself.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push message ~ /(unclosed/ run deploy\n'),
    "TRG302": _e("""The glob is invalid: an unclosed or reversed character class. Close it with
        `]`, or escape a literal `[` as `\\[`.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on file.changed path ~ "src/[abc" run deploy\n'),
    "TRG303": _e("""The cron expression does not have five valid fields (minute, hour, day of month,
        month, day of week; the message names the field that is not valid), or it never fires
        (`0 0 30 2 *`: no February has a 30th), or a range runs backwards (`5-1`, `22-2`:
        cronie reads it as no value, croniter as a wrap-round; write `5-6,0-1`; `5-0` in the
        day-of-week field is Friday to Sunday). A crontab line pasted whole gets a hint that
        says where its parts go (`CRON_TZ=` is the rule's `tz`, the command an action), and a
        systemd `OnCalendar=` time its cron expression (`Mon..Fri 03:00`: `0 3 * * mon-fri`). The
        aliases `@hourly`, `@daily`, `@weekly`,
        `@monthly` and `@yearly` are accepted; `@reboot` is not (there is no start-up trigger).""",
                 'action report = shell "./report.sh"\n'
                 'on cron "0 3 * *" run report\n'),
    "TRG304": _e("""A duration that is zero, longer than 100 years (`36500d`), or written in a
        form triggerlang does not read (`10mins`, `5 m`, `2w`, a bare `10` where a duration
        goes). A duration is a number
        and a unit with no space between them: `250ms`, `30s`, `5m`, `1.5h`, `1d`; the hint
        gives the spelling that works.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy timeout 0s\n'),
    "TRG305": _e("""The time zone of a cron schedule is not an IANA name (`Europe/Paris`, `UTC`,
        `America/New_York`).""",
                 'action report = shell "./report.sh"\n'
                 'on cron "0 3 * * *" tz "Mars/Olympus" run report\n'),
    "TRG306": _w("""A filter glob written in GitHub Actions' filter syntax (`on.push.branches`,
        `tags`, `paths`), where it means something else. A leading `!` is GitHub's negation
        but a literal `!` here: add a condition with `!~` instead (`branch ~ "releases/**"
        branch !~ "releases/**-alpha"`; write `\\\\!` for a literal `!`); on a list field
        (`files ~ ["app/**", "!app/assets/**"]`) one file must pass the whole list, so the hint
        is one regex (`/^(?!app\\/assets\\/.*$)app\\/.*$/`). A `+` after a character
        class is GitHub's "one or more" but a literal `+` in a glob, so `v[0-9]+.[0-9]+` never
        matches `v1.2`: the hint gives the regex that does (`/^v[0-9]+\\.[0-9]+$/`).""",
                 'action release(tag) = exec "./release.sh" tag\n'
                 'on git.tag tag ~ "v[0-9]+.[0-9]+" run release with <tag>\n'),
    "TRG307": _w("""A string with a `*` compared with `=`, `!=`, `in` or `not in`: those compare
        exactly, so the `*` is a literal `*` and `branch="release/*"` matches only a branch named
        `release/*`, which git does not allow: the rule silently never runs. Globs and regexes
        take `~` and `!~` (`branch ~ "release/*"`; `not in [...]` becomes `not branch ~ [...]`),
        and the hint gives the condition to write. A lone `"*"` compared with an untyped
        `payload.` field is left alone: some senders use it as a value.""",
                 'action build(sha) = exec "./build.sh" sha\n'
                 'on git.push branch="release/*" run build with <sha>\n'),
    "TRG401": _e("""More arguments than the action has parameters, a positional argument after a
        named one, or a parameter given twice.""",
                 'action lint = shell "ruff check ."\n'
                 'on git.push run lint with "src"\n'),
    "TRG402": _e("""A named argument the action does not declare. The hint suggests the closest
        parameter or lists them.""",
                 'action deploy(sha, stage="staging") = exec "./deploy.sh" sha stage\n'
                 'on git.push run deploy with sha=<sha>, stag="prod"\n'),
    "TRG403": _e("""A placeholder `<field>` for a field the trigger's events do not have, so the
        argument would always be empty.""",
                 'action deploy(sha) = exec "./deploy.sh" sha\n'
                 'on git.push run deploy with <sah>\n'),
    "TRG404": _e("""A parameter without a default that the rule does not bind. Pass it
        (`with ...`), or give the parameter a default in the action.""",
                 'action deploy(sha, stage) = exec "./deploy.sh" sha stage\n'
                 'on git.push run deploy with <sha>\n'),
    "TRG405": _e("""A bare name in an `exec` argv must be one of the action's parameters (lets are
        not expanded in an argv: pass the value as a parameter).""",
                 'action deploy(sha) = exec "./deploy.sh" sha stage\n'
                 'on git.push run deploy with <sha>\n'),
    "TRG406": _e("""A policy given twice in one rule; each of `debounce`, `busy`, `timeout`,
        `retry` and `dedupe` appears at most once.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy timeout 1m timeout 2m\n'),
    "TRG407": _e("""An invalid policy value: `busy` takes `queue`, `skip`, `restart`, `parallel` or
        `signal SIGNAL`; `busy signal` needs a signal a program can trap (SIGHUP, SIGUSR1,
        SIGUSR2, SIGINT, SIGQUIT, SIGTERM, SIGWINCH or SIGALRM; not SIGKILL or SIGSTOP, which
        `busy restart` does properly) and an exec or shell action (an `http` action has no
        process); `retry` takes a whole number from 0 to 100.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push run deploy busy wait\n'),
    "TRG408": _e("""An invalid action declaration: a parameter declared twice (or two of an
        `exec` or `shell` action that would share one `TRG_INPUT_<NAME>` variable, `sha` and
        `Sha`), an `http` action
        that is not `post` or whose URL is not http(s), an unknown option, `cwd` or `stop`
        given twice, an invalid environment variable name, `stop` naming a signal that does not
        stop a process (SIGSTOP) or written on an `http` action, a NUL byte (`\\u{0}`) in what an
        `exec` or `shell` action gives its process (an argument, the script, an `env` value,
        `cwd`: the run could never start; a parameter's default, a value a rule passes it with
        `with`: the run would get it without the NUL byte, as it gets an event's value) or in an
        `http` action's URL.""",
                 'action notify = http get "https://ci.example.com/hook"\n'
                 'on git.push run notify\n'),
    "TRG409": _w("""The program of an `exec` action is one of its parameters, and the rule fills
        that parameter with a field of the event (`<payload.tool>`): whoever can send the event
        chooses what runs, with the arguments it also chooses. Run a fixed program that
        receives the value as an argument (it decides what the value may mean), or pin the
        field in the rule's filter to the programs you allow (`payload.tool in ["./a", "./b"]`),
        which silences this warning.""",
                 'secret hook = env "HOOK_TOKEN"\n'
                 'source http token=hook\n'
                 'action tool(program, arg) = exec program arg\n'
                 'on http.post path="/run" run tool with <payload.program>, <payload.arg>\n'),
    "TRG410": _w("""An `exec` action passes each of its strings to the program as written: no shell
        splits them into words or expands what they name. `exec "make build"` runs a program
        called `make build`; write the program and each argument as a string each, `exec "make"
        "build"`, or, for pipes and operators, a `shell` action. It is reported when the first
        string's first word has no `/` (a name looked up on PATH) or a later word is a flag, so
        a path with a space (`"/opt/My App/bin/tool"`) is not. `"$sha"`, `"${sha}"`,
        `"{{sha}}"` or `"${{ github.sha }}"` naming a parameter of the action, in its body, or
        a field of the event, in a rule's arguments, is passed as those characters: write the
        parameter bare (`sha`), the field as an argument of its own (`<sha>`). In a rule's
        arguments, so are Tekton's `"$(body.ref)"`, Argo's and adnanh/webhook's
        `"{{ .Input.body.ref }}"` and a placeholder in quotes, `"<sha>"`; `"<b>"` and
        `"$(date)"`, which name no field, are left alone.""",
                 'action build = exec "make build"\n'
                 'on git.push run build\n'),
    "TRG411": _w("""A `shell` action's script is run as `/bin/sh -c SCRIPT` with no arguments
        after it, as GitHub Actions runs a `run:` step, and with its inputs only as variables,
        `$TRG_INPUT_<NAME>`, one for each of its action's parameters. So its positional
        parameters, `$1`, `${2}`, `$@`, `$*`, are always empty, and so is a parameter read by
        its bare name, `$sha` or `${sha:-dev}` for `action deploy(sha)` (unless serve's own
        environment has a variable `sha`), or a `let` (lets are not expanded in a script). `$1`
        is answered with the first parameter's variable (`$TRG_INPUT_SHA` for `action
        deploy(sha)`), `$@` with the parameters' variables, `$sha` with its own,
        `${TRG_INPUT_SHA:-dev}` for `${sha:-dev}`; with no parameter, declare one and pass it
        from the rule, as for a let. A name is matched exactly: `$SHA` and `$PATH` are other
        variables. What the shell does not expand is left alone: `'$1'` in single quotes (an
        awk program, an `sh -c '...' _ x` that gives its own arguments), `\\$1`, `$$`, a comment,
        a quoted here-document; and so is a script that gives itself positional parameters,
        with a function or `set -- ...`, or gives the name a value (`sha=...`, `read sha`, `for
        sha in`, `local sha=...`, `getopts ... sha`, `${sha:=x}`), or an action whose `env`
        sets it.""",
                 'action deploy(sha) = shell "./deploy.sh $sha"\n'
                 'on git.push run deploy with <sha>\n'),
    "TRG501": _e("""The rule's conditions contradict each other, so it can never match (two
        different values for one field, a value excluded by a list, an HTTP method written in
        lower case: `method="post"`, where an event's is `POST`, a value of a credential
        header such as `headers.x-gitlab-token` or `headers.x-api-key`, or query parameter
        such as `query.access_token`, which rules only ever see as `<redacted>`, so no comparison of
        one (`=`, `!=`, `~`, `!~`, `in`, `not in`, `<`...) sees the value sent, and `!=` holds
        whenever it is sent: the route checks it, `token=NAME header="X-Api-Key"`, `token=NAME
        query="access_token"`, and `has headers.x-api-key` tests that one was sent; or a value of
        the credential the rule's route checks, its `header="X-My-Key"` or `query="tk"`, or the
        header its check reads when it names none (`Authorization` for `token=`), which
        rules see as `<redacted>` or not at all (so `has query.tk` never holds there): the
        route answers 401 without it, drop the condition (on a correlation's member too); or a `ref` that is not whole where an event's is, `ref="main"` for
        `refs/heads/main`, or a `branch` or `tag` written whole, `branch="refs/heads/main"`).
        Conditions side by side
        must all hold: write alternatives with `or` or `in [...]`.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch="main" branch="dev" run deploy\n'),
    "TRG502": _w("""A rule identical to an earlier one: every matching event would run the action
        twice. Remove one of them.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on git.push branch="main" run deploy\n'
                 'on git.push branch="main" run deploy\n'),
    "TRG503": _w("""A rule on `run.completed`/`run.failed` can be started, directly or through other
        `run.*` rules, by its own runs: the chain never ends (a rule on `run.completed` with no
        `rule=` filter follows every rule's runs, its own included). The cycle is named.
        Only the conditions on `rule` and `action` are reasoned about; any other condition is
        taken as possibly true, so the warning is conservative. Name the rules a `run.*` rule
        follows (`rule="build"`, `rule in [...]`), or exclude its own (`rule != "notify"`).""",
                 'action test = shell "pytest"\n'
                 'action notify = shell "./notify.sh"\n'
                 'tests: on git.push run test\n'
                 'notify: on run.completed run notify\n'),
    "TRG601": _e("""An `expect` names a rule that does not exist (in the file, or in the file a
        `_test.trg` tests). Rules without a label are named `L<line>`; give the rule a label
        to test it.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'deploy_main: on git.push branch="main" run deploy\n'
                 'test "main deploys":\n'
                 '    given git.push branch="main"\n'
                 '    expect deploy_mian\n'),
    "TRG602": _e("""The payload file of `given PROVIDER.EVENT from "file.json"` cannot be read, is
        not JSON, or the provider's normaliser refuses it. The path is relative to the rules
        file.""",
                 'secret gh = env "GITHUB_WEBHOOK_SECRET"\n'
                 'source github secret=gh\n'
                 'action deploy = shell "./deploy.sh"\n'
                 'gp: on github.push run deploy\n'
                 'test "a real delivery":\n'
                 '    given github.push from "payloads/no-such-file.json"\n'
                 '    expect gp\n'),
    "TRG603": _e("""An invalid test block: a blank or duplicate test name, `given SOURCE.*` (a test
        event is one event), a field given twice, contradictory expectations (`expect none`
        with `expect R`), or a `given` the rules cannot receive.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'deploy_main: on git.push branch="main" run deploy\n'
                 'test "any git event":\n'
                 '    given git.* branch="main"\n'
                 '    expect deploy_main\n'),
    "TRG701": _ew("""A correlation group of the wrong shape: `all(...)` or `seq(...)` with fewer than
        two members, `N of (...)` with N below 1 or above its members, `N of m` with N below
        2, or an N that is not a whole number. `1 of (...)` is `any(...)` and `N of` all the
        members is `all(...)`: say so.""",
                  'action deploy = shell "./deploy.sh"\n'
                  'on 3 of (git.push, git.tag) within 1h run deploy\n',
                  "`N of (...)` with N = 1 or N = its members"),
    "TRG702": _e("""A correlation member's alias is used twice, is `group` (reserved for
        `<group.…>`), or is missing where two members have the same event name (a member's
        alias defaults to its event name): name the member with `as ALIAS`.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push branch="main", git.push branch="next") within 1h run deploy\n'),
    "TRG703": _e("""A correlation key field the member's event does not have (the hint suggests the
        closest field; give the member its own key with `key <FIELD>` when the field has
        another name there), or members whose keys have different numbers of parts.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push as p, file.modified as f) same <sha> within 1h run deploy\n'),
    "TRG704": _e("""Position *i* of the correlation key has another type in another member: an
        `int` in one and a `str` in the other never compare equal, so the group could never
        complete. Key on fields of the same type (`str`, `int`, `number`, `bool`, `time`).""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push key <commits>, git.tag key <sha>) within 1h run deploy\n'),
    "TRG705": _e("""A correlation key must be one value: a list (`files`, `labels`) or a map
        (`headers`, `inputs`) cannot key a group. Key on a single field.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push, git.tag) same <files> within 1h run deploy\n'),
    "TRG706": _w("""A correlation key on an untyped path (`payload.…`): its values are compared as
        JSON scalars without coercion, so `42` and `"42"` are different keys. Key on a typed
        field where the event has one.""",
                 'secret t = env "HOOK_TOKEN"\n'
                 'source http path="/hooks/*" token=t\n'
                 'action release = shell "./release.sh"\n'
                 'on all(http.post path="/hooks/a" as a, http.post path="/hooks/b" as b) same <payload.tag>\n'
                 '    within 1h run release\n'),
    "TRG707": _ew("""A correlation window that is missing (`all`, `seq`, `N of` and `any ... same`
        need `within D`), not longer than zero, longer than 100 years, on a nested group (the outermost group's
        window bounds it all), or a `between` pair of crons whose windows would not close
        before the next one opens (checked over the next 366 days).""",
                  'action deploy = shell "./deploy.sh"\n'
                  'on all(git.push, git.tag) same <sha> run deploy\n',
                  "a window over 7 days"),
    "TRG708": _ew("""A placeholder of a correlation rule that names no member alias, no `same` key
        and no group value (`<group.key>`, `<group.opened_at>`...), reads the absent member
        of `absent(...)` (it has no event), or reads `<group.first.f>` for a field not every
        member has with one type.""",
                  'action deploy(sha) = exec "./deploy.sh" sha\n'
                  'on all(git.push as p, git.tag as t) same <sha> within 1h run deploy with <branch>\n',
                  "a member that may have no event when the rule fires (in `any` or `N of`): it would bind \"\""),
    "TRG709": _e("""A filter written after a correlation trigger applies to no member: move each
        condition onto the member it is about.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push, git.tag) within 1h branch="main" run deploy\n'),
    "TRG710": _w("""Two members of one correlation can match the same event (their filters are not
        provably exclusive). Such an event fills the first empty one, in written order; make
        the filters exclusive (`workflow="build"` / `workflow="test"`).""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push as any_push, git.push branch="main" as main_push) within 1h run deploy\n'),
    "TRG711": _e("""A misplaced or ill-formed absence: `absent(...)` inside a group, `after` with
        `for` or `between`, `after` without `within`, keys in `same <k> in [...]` of another
        type than the key, or a keyed `between` window without its list of keys.""",
                 'action page = shell "./page.sh"\n'
                 'on absent(git.tag) after git.push for 1h run page\n'),
    "TRG712": _e("""`debounce` does not apply to a correlation rule: its window already gathers
        events. The other policies apply to its run.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push, git.tag) within 1h run deploy debounce 1s\n'),
    "TRG713": _e("""`max N` (the open groups a correlation rule may have) must be a whole number
        from 1 to 1,000,000; the default is 10,000.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'on all(git.push, git.tag) within 1h max 0 run deploy\n'),
    "TRG714": _e("""A test's timing is wrong: `wait` of zero, `at` going back in time (a test's
        clock starts at Monday 2024-01-01T00:00:00Z and only moves forward), `at` or `wait`
        taking it past the year 9000, `at` with a
        value that is not an ISO 8601 time, or `expect open`/`expect expired` on a rule that
        is not a correlation.""",
                 'action deploy = shell "./deploy.sh"\n'
                 'gate: on all(git.push as p, git.tag as t) same <sha> within 1h run deploy\n'
                 'test "the clock":\n'
                 '    at "2023-12-31T00:00:00Z"\n'
                 '    expect none\n'),
}


def rule_metadata(code: str) -> dict:
    """The SARIF ``reportingDescriptor`` of one code (an unknown code gets its id only)."""
    doc = CODE_DOCS.get(code)
    name = CODES.get(code, code)
    out: dict = {"id": code, "shortDescription": {"text": name}}
    if doc is None:
        return out
    anchor = code.lower()
    md = f"**{code}: {name}** ({severity_text(doc)})\n\n{doc.explanation}"
    if doc.example:
        md += f"\n\nExample:\n\n```\n{doc.example}```"
    out.update({
        "fullDescription": {"text": _plain(doc.explanation)},
        "help": {"text": _plain(doc.explanation) + f"\nSee {DOCS_URL}#{anchor}", "markdown": md},
        "helpUri": f"{DOCS_URL}#{anchor}",
        "defaultConfiguration": {"level": doc.severity},
    })
    return out


def _plain(markdown: str) -> str:
    return markdown.replace("`", "")


def docs_page() -> str:
    """The Markdown of docs/diagnostics.md: every code, its meaning, an example and the
    output ``triggerc check`` gives for it (computed here, so the page cannot go stale)."""
    out = ["# Diagnostic codes", "",
           "<!-- Generated by `python -m triggerlang.check.codedocs > docs/diagnostics.md` from",
           "     triggerlang/check/checker.py (CODES) and triggerlang/check/codedocs.py: edit those. -->",
           "",
           "Every problem `triggerc check` reports has a stable code. Errors make `check` exit 1;",
           "warnings do too under `--strict`, unless a `# noqa: CODE` comment or `check --ignore CODE`",
           "leaves them out. `--format sarif` links each result here; `triggerc explain CODE` prints",
           "an entry in the terminal.",
           "",
           "| code | | severity |", "|---|---|---|"]
    for code, name in CODES.items():
        out.append(f"| [{code}](#{code.lower()}) | {name} | {severity_text(CODE_DOCS[code])} |")
    for code in CODES:
        out += ["", f"## {code}", ""] + code_section(code)
    return "\n".join(out) + "\n"


def example_output(code: str) -> str | None:
    """What ``triggerc check rules.trg`` prints for the code's example (None: it has none)."""
    from ..api import compile_text
    from ..diagnostics import render_text

    doc = CODE_DOCS[code]
    if not doc.example:
        return None
    c = compile_text(doc.example, "rules.trg", base_dir="/nonexistent")
    return render_text(c.diagnostics, c.sources).rstrip("\n")


def code_section(code: str) -> list[str]:
    """The Markdown lines of one code's entry, below its heading: what the docs page has
    and ``triggerc explain CODE`` prints."""
    doc = CODE_DOCS[code]
    out = [f"**{CODES[code]}** ({severity_text(doc)})", "", doc.explanation]
    output = example_output(code)
    if output is not None:
        out += ["", "```trg", doc.example.rstrip("\n"), "```", "",
                "```console", "$ triggerc check rules.trg", output, "```"]
    return out


if __name__ == "__main__":  # pragma: no cover - writes the docs page
    import sys

    sys.stdout.write(docs_page())
