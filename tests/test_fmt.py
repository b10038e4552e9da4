"""``triggerc fmt``: formatting never changes meaning and is idempotent (property tests over
generated rule files), plus the layout rules (comments, blank lines, wrapping)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggerlang.fmt import WIDTH, by_name, format_text
from triggerlang.syntax.parser import _bracket_delta, parse, split_comment

# --------------------------------------------------------------------------- generators
#
# Each generator returns *source text* (a declaration is a list of tokens, joined below by
# random whitespace, continuation lines and comments), so one meaning is written in many
# ways: escapes spelt differently, optional parentheses, juxtaposed or explicit `and`.

KEYWORDS = set("""let secret source action exec shell http cwd env stop grace on run with and or not in has true
false every cron tz debounce busy timeout retry backoff dedupe for test given from expect only none
file all any of seq absent same within between after as key max wait at open expired missing""".split())

names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}(-[a-z0-9]{1,3})?", fullmatch=True).filter(lambda s: s not in KEYWORDS)
# after a dot any word is a field name, reserved words and digits included
segments = st.one_of(names, st.sampled_from(["on", "run", "true", "in", "not", "0", "12", "x-y", "file", "env"]))
fields = st.builds(lambda head, rest: ".".join([head, *rest]), names, st.lists(segments, max_size=3))

STRING_CHARS = st.one_of(
    st.sampled_from(list('ab Z09#/[](),:=<>*?~!.-_\'"\\\n\tr') + ["é", "日", "😀", "\x00", "\x01", "\x7f", "\x85", "\x1c", "\u2028", "\ufeff", "\x0b"]),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
)


@st.composite
def string_literals(draw) -> str:
    """A "..." literal of a random value, each character written one of the ways it can be."""
    value = draw(st.lists(STRING_CHARS, max_size=10))
    rnd = draw(st.randoms(use_true_random=False))
    out = []
    for ch in value:
        simple = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch)
        choice = rnd.randrange(3)
        if choice == 0 and ch not in '"\\\n\r':
            out.append(ch)                          # as itself (a tab may be literal too)
        elif choice == 1 and simple:
            out.append(simple)
        else:
            out.append("\\u{%s}" % (rnd.choice(["%x", "%X", "%04x"]) % ord(ch)))
    return '"' + "".join(out) + '"'


raw_strings = st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\n\r', exclude_categories=("Cs",)),
                      max_size=10).map(lambda s: f'r"{s}"')
strings = st.one_of(string_literals(), raw_strings)
plain_strings = string_literals()  # where the grammar takes STRING only (no raw string)

REGEX_ATOMS = ["a", "b", "Z", "\\d", "\\w+", ".", "*", "?", "^", "$", "|", "\\/", "#", '"', "(", ")", "[", "]",
               " ", "é", "\\\\", "{2}", "r"]
regexes = st.builds(lambda atoms, flags: "/" + "".join(atoms) + "/" + flags,
                    st.lists(st.sampled_from(REGEX_ATOMS), min_size=1, max_size=6),
                    st.sampled_from(["", "i", "m", "s", "ims", "si", "ii"]))
numbers = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.builds(lambda a, b: f"{a}.{b}", st.integers(-999, 999), st.from_regex(r"[0-9]{1,3}", fullmatch=True)))
durations = st.builds(lambda n, frac, unit: f"{n}{frac}{unit}", st.integers(0, 10_000),
                      st.sampled_from(["", ".5", ".25"]), st.sampled_from(["ms", "s", "m", "h", "d"]))
scalars = st.one_of(strings, regexes, numbers, durations, st.sampled_from(["true", "false"]), names)


def _list_of(items):
    return st.builds(lambda xs, trailing: "[" + ", ".join(xs) + ("," if trailing and xs else "") + "]",
                     st.lists(items, max_size=4), st.booleans())


values = st.recursive(scalars, _list_of, max_leaves=6)
placeholders = fields.map(lambda f: f"<{f}>")

OPS = ["=", "!=", "~", "!~", "<", "<=", ">", ">=", "in", "not in"]


def _condition(f: str, op: str, v: str, tight: bool) -> str:
    sep = "" if tight and op[0] in "=!~<>" else " "   # `in` / `not in` are words: spaces needed
    return f"{f}{sep}{op}{sep}{v}"


conditions = st.one_of(
    st.builds(_condition, fields, st.sampled_from(OPS), values, st.booleans()),
    fields.map(lambda f: f"has {f}"),
)


@st.composite
def exprs(draw, depth: int = 0) -> tuple[str, str]:
    """(text, kind): kind is atom, not, paren, and or or (to know when parentheses are needed)."""
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(conditions), "atom"
    kind = draw(st.sampled_from(["not", "and", "or", "paren"]))
    if kind == "not":
        text, k = draw(exprs(depth + 1))
        return "not " + (text if k in ("atom", "not", "paren") else f"({text})"), "not"
    if kind == "paren":
        text, _ = draw(exprs(depth + 1))
        return f"({text})", "paren"
    parts = draw(st.lists(exprs(depth + 1), min_size=2, max_size=3))
    if kind == "and":
        sep = draw(st.sampled_from([" and ", " "]))   # side by side is `and` too
        return sep.join(f"({text})" if k == "or" else text for text, k in parts), "and"
    return " or ".join(text for text, _ in parts), "or"


triggers = st.one_of(
    st.builds(lambda s, e: f"{s}.{e}", st.one_of(names, st.just("run")), st.one_of(segments, st.just("*"))),
    st.builds(lambda d: f"every {d}", st.one_of(durations, names)),
    st.builds(lambda c, tz: f"cron {c}" + (f" tz {tz}" if tz else ""), plain_strings, st.one_of(st.none(), plain_strings)),
)
arg_values = st.one_of(values, placeholders)
args = st.lists(st.one_of(arg_values, st.builds(lambda n, v: f"{n}={v}", names, arg_values)), min_size=1, max_size=3)
dur_or_ref = st.one_of(durations, names)
policies = st.lists(st.sampled_from(["debounce", "busy", "timeout", "retry", "dedupe"]), unique=True, max_size=5)


@st.composite
def policy_text(draw, kind: str) -> str:
    if kind == "busy":  # (`busy signal SIGHUP`: a name after the mode)
        sig = draw(st.sampled_from([None, "SIGHUP", "SIGUSR2"]))  # (fmt spells `hup` SIGHUP: not the same tree)
        return f"busy {draw(names)}" + (f" {sig}" if sig else "")
    if kind == "retry":
        n = draw(st.one_of(st.integers(0, 9).map(str), names))
        return f"retry {n}" + (f" backoff {draw(dur_or_ref)}" if draw(st.booleans()) else "")
    if kind == "dedupe":
        return f"dedupe {draw(placeholders)} for {draw(dur_or_ref)}"
    return f"{kind} {draw(dur_or_ref)}"


event_triggers = st.builds(lambda s, e: f"{s}.{e}", st.one_of(names, st.just("run")), st.one_of(segments, st.just("*")))


@st.composite
def members(draw) -> str:
    out = [draw(event_triggers)]
    if draw(st.booleans()):
        out.append(draw(exprs())[0])
    if draw(st.booleans()):
        out.append(f"as {draw(names)}")
    keys = draw(st.lists(placeholders, max_size=3))
    if len(keys) == 1 and draw(st.booleans()):
        out.append(f"key {keys[0]}")
    elif keys:
        out.append("key (" + ", ".join(keys) + ("," if draw(st.booleans()) else "") + ")")
    return " ".join(out)


@st.composite
def groups(draw, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["all", "any", "seq", "n_of", "count"]))
    if kind == "count":
        return f"{draw(st.integers(0, 9))} of {draw(members())}"
    items = draw(st.lists(st.one_of(members(), groups(depth + 1) if depth < 1 else members(),
                                    members().map(lambda m: f"absent({m})")), min_size=1, max_size=3))
    body = ", ".join(items) + ("," if draw(st.booleans()) else "")
    head = f"{draw(st.integers(0, 9))} of (" if kind == "n_of" else f"{kind}("
    out = head + body + ")"
    if depth and draw(st.booleans()):
        out += f" same {draw(placeholders)}"
    if depth and draw(st.booleans()):
        out += f" within {draw(dur_or_ref)}"
    return out


@st.composite
def correlations(draw) -> str:
    clauses = []
    if draw(st.booleans()):
        clauses.append("same " + ", ".join(draw(st.lists(placeholders, min_size=1, max_size=2))))
    if draw(st.booleans()):
        clauses.append(f"within {draw(dur_or_ref)}")
    if draw(st.booleans()):
        clauses.append(f"max {draw(st.one_of(st.integers(0, 99).map(str), names))}")
    if draw(st.booleans()):
        trig = f"absent({draw(members())})"
        if draw(st.booleans()):
            trig += f" after {draw(members())}"
        tail = []
        if draw(st.booleans()):
            tail.append("same " + ", ".join(draw(st.lists(placeholders, min_size=1, max_size=2))))
            if draw(st.booleans()):
                tail.append(f"in {draw(values)}")
        window = draw(st.sampled_from(["", "within", "for", "between"]))
        if window == "between":
            tail.append(f"between cron {draw(plain_strings)} and cron {draw(plain_strings)}"
                        + (f" tz {draw(plain_strings)}" if draw(st.booleans()) else ""))
        elif window:
            tail.append(f"{window} {draw(dur_or_ref)}")
        if draw(st.booleans()):
            tail.append(f"max {draw(st.integers(0, 99))}")
        if tail and draw(st.booleans()):
            tail.append(draw(exprs())[0])
        return " ".join([trig, *tail])
    g = draw(groups())
    count = g[0].isdigit() and not g.split(" ", 2)[2].startswith("(")   # N of MEMBER
    if (clauses or not count) and draw(st.booleans()):
        clauses.append(draw(exprs())[0])   # a filter after the trigger (TRG709) parses after a clause
    return " ".join([g, *clauses])


@st.composite
def rules(draw) -> str:
    label = draw(st.one_of(st.none(), names))
    corr = draw(st.integers(0, 3)) == 0
    head = (f"{label}: " if label else "") + f"on {draw(correlations() if corr else triggers)}"
    filt = None if corr else draw(st.one_of(st.none(), exprs()))
    parts = [head]
    if filt:
        parts.append(filt[0])
    parts.append(f"run {draw(names)}")
    if draw(st.booleans()):
        parts.append("with " + ", ".join(draw(args)))
    parts.extend(draw(policy_text(k)) for k in draw(policies))
    return " ".join(parts)


lets = st.builds(lambda n, v: f"let {n} = {v}", names, values)
secrets = st.builds(lambda n, k, s: f"secret {n} = {k} {s}", names, st.sampled_from(["env", "file"]), plain_strings)
options = st.lists(st.builds(lambda n, v: f"{n}={v}", names, values), max_size=3)
sources = st.builds(lambda n, opts: " ".join([f"source {n}", *opts]), names, options)


@st.composite
def actions(draw) -> str:
    name = draw(names)
    params = ""
    if draw(st.booleans()):
        ps = draw(st.lists(st.builds(lambda n, d: n + (f"={d}" if d else ""), names, st.one_of(st.none(), values)),
                           max_size=3))
        params = "(" + ", ".join(ps) + ("," if ps and draw(st.booleans()) else "") + ")"
    kind = draw(st.sampled_from(["exec", "shell", "http"]))
    opts = [f"cwd {draw(plain_strings)}"] if draw(st.booleans()) else []
    opts += [f"env {draw(names).upper().replace('-', '_')}={draw(plain_strings)}" for _ in range(draw(st.integers(0, 2)))]
    if kind != "http" and draw(st.booleans()):
        opts.append(draw(st.sampled_from(["stop SIGINT", "stop SIGHUP grace 30s", "stop grace 1m", "stop SIGTERM grace 5m"])))
    if kind == "exec":
        argv = draw(st.lists(st.one_of(strings, names), min_size=1, max_size=4))
        body = "exec " + " ".join(argv)
    elif kind == "shell":
        body = f"shell {draw(plain_strings)}"
    else:
        body = f"http {draw(names)} {draw(plain_strings)} " + " ".join(draw(options))
    return " ".join([f"action {name}{params} = {body}", *draw(st.permutations(opts))])


@st.composite
def given_lines(draw) -> str:
    trig = draw(st.builds(lambda s, e: f"{s}.{e}", st.one_of(names, st.just("run")), st.one_of(segments, st.just("*"))))
    given_fields = draw(st.lists(st.builds(lambda f, v: f"{f}={v}", fields, values), max_size=3))
    given_line = " ".join(["given", trig, *given_fields])
    if draw(st.booleans()):
        given_line += f" from {draw(plain_strings)}"
    return given_line


@st.composite
def rule_tests(draw) -> str:
    steps = []
    for kind in draw(st.lists(st.sampled_from(["given", "given", "wait", "at", "open", "expired"]), max_size=4)):
        if kind == "given":
            steps.append(draw(given_lines()))
        elif kind == "wait":
            steps.append(f"wait {draw(dur_or_ref)}")
        elif kind == "at":
            steps.append(f"at {draw(plain_strings)}")
        else:
            line = f"expect {kind} {draw(names)}"
            key = draw(st.lists(values, max_size=3))
            if len(key) == 1:
                line += f" key {key[0]}"
            elif key:
                line += " key (" + ", ".join(key) + ")"
            if draw(st.booleans()):
                line += " missing " + ", ".join(draw(st.lists(names, min_size=1, max_size=3)))
            steps.append(line)
    expects = []
    for kind in draw(st.lists(st.sampled_from(["match", "with", "not", "only", "none"]), min_size=1, max_size=4)):
        if kind == "match":
            expects.append(f"expect {draw(names)}")
        elif kind == "with":
            expects.append(f"expect {draw(names)} with " + ", ".join(draw(args)))
        elif kind == "not":
            expects.append(f"expect not {draw(names)}")
        elif kind == "only":
            expects.append("expect only " + ", ".join(draw(st.lists(names, min_size=1, max_size=3))))
        else:
            expects.append("expect none")
    return f"test {draw(plain_strings)}:\n    " + "\n    ".join([*steps, *expects])


COMMENT_TEXTS = ["# a comment", "#", '# "quoted" [bracket', "# trailing # hashes", "#é😀"]
COMMENTS = st.sampled_from(COMMENT_TEXTS)


@st.composite
def layouts(draw, decl: str) -> str:
    """Re-lay one declaration: tokens joined by spaces, continuation lines and comments."""
    rnd = draw(st.randoms(use_true_random=False))
    pieces = _split_tokens(decl)
    result, depth = pieces[0], _bracket_delta(pieces[0])
    for piece in pieces[1:]:
        seps = [" ", " ", " ", " ", "  ", "\n    ", "\n\t", "  # note\n  "]
        if depth > 0:
            seps += ["\n", "  # inside brackets\n"]  # inside ( or [ a line may start in column 1
        result += rnd.choice(seps) + piece
        depth += _bracket_delta(piece)
    if rnd.random() < 0.3:
        result += "  " + rnd.choice(COMMENT_TEXTS)
    return result


def _split_tokens(text: str) -> list[str]:
    """Split at spaces outside strings, raw strings and regexes (and keep test blocks whole-line)."""
    pieces, cur, i, n = [], "", 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            raw = cur.endswith("r") and (len(cur) < 2 or not (cur[-2].isalnum() or cur[-2] == "_"))
            j = i + 1
            while j < n and text[j] != '"':
                j += 1 if raw or text[j] != "\\" else 2
            cur += text[i:j + 1]
            i = j + 1
            continue
        if c == "/":
            j = i + 1
            while j < n and text[j] != "/":
                j += 2 if text[j] == "\\" else 1
            cur += text[i:j + 1]
            i = j + 1
            continue
        if c in " \n":
            if cur:
                pieces.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        pieces.append(cur)
    return pieces


@st.composite
def files(draw) -> str:
    decls = draw(st.lists(st.one_of(rules(), rules(), lets, secrets, sources, actions(), rule_tests()), min_size=1, max_size=6))
    out = []
    for d in decls:
        if draw(st.integers(0, 3)) == 0:
            out.append(draw(COMMENTS))
        out.extend([""] * draw(st.integers(0, 2)))
        out.append(draw(layouts(d)))
    return "\n".join(out) + draw(st.sampled_from(["", "\n", "\n\n", "\n# end\n"]))


def comments(text: str) -> list[str]:
    return [c.rstrip() for c in (split_comment(line)[1] for line in text.replace("\r\n", "\n").split("\n")) if c]


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])


@PROPERTY
@given(files())
def test_format_keeps_meaning_and_is_idempotent(text: str) -> None:
    module, diags = parse(text)
    assert not diags.items, (text, [(d.code, d.span.start.line, d.message) for d in diags])
    once, d1 = format_text(text)
    assert once is not None, d1.items
    again, d2 = parse(once)
    assert not d2.items, (once, [(d.code, d.span.start.line, d.message) for d in d2])
    assert by_name(again) == by_name(module)
    assert comments(once) == comments(text)   # every comment kept, in the order written
    twice, _ = format_text(once)
    assert twice == once
    assert once.endswith("\n") and "\n\n\n" not in once


@settings(PROPERTY, max_examples=40)
@given(st.lists(st.one_of(rules(), lets, actions()), min_size=1, max_size=4))
def test_one_line_declarations_stay_declarations(decls: list[str]) -> None:
    text = "\n".join(decls) + "\n"
    once, _ = format_text(text)
    assert len(parse(once)[0].decls) == len(decls)
    for line in once.split("\n"):  # (not splitlines: U+0085 and U+2028 may sit in a string)
        assert line == line.rstrip()


# --------------------------------------------------------------------------- layout

def fmt(text: str) -> str:
    out, diags = format_text(text)
    assert out is not None, diags.items
    return out


def test_canonical_spacing() -> None:
    assert fmt('on   git.push   branch = "main"   author!="bot" run  d  with  <sha> ,"x"\n') == \
        'on git.push branch="main" author != "bot" run d with <sha>, "x"\n'
    assert fmt('let xs = [ 1,2 ,3, ]\n') == "let xs = [1, 2, 3]\n"
    assert fmt("action d( a , b='x') = exec 'x'\n".replace("'", '"')) == 'action d(a, b="x") = exec "x"\n'
    assert fmt('action d() = shell "x"\n') == 'action d() = shell "x"\n'


def test_and_or_not_and_parentheses() -> None:
    assert fmt('on git.push a="1" and b="2" run d\n') == 'on git.push a="1" b="2" run d\n'
    assert fmt('on git.push (a="1" or b="2") and c="3" run d\n') == 'on git.push (a="1" or b="2") c="3" run d\n'
    assert fmt('on git.push ((a="1")) run d\n') == 'on git.push a="1" run d\n'
    assert fmt('on git.push not (a="1" b="2") run d\n') == 'on git.push not (a="1" and b="2") run d\n'
    assert fmt('on git.push a="1" b="2" or c="3" run d\n') == 'on git.push a="1" and b="2" or c="3" run d\n'
    assert fmt('on git.push not (not a="1") run d\n') == 'on git.push not not a="1" run d\n'


def test_strings_are_re_escaped_one_way() -> None:
    assert fmt('let s = "\\u{41}\\u{e9}\\t\\"\\\\x\\u{1}"\n') == 'let s = "Aé\\t\\"\\\\x\\u{1}"\n'
    assert fmt('let s = r"C:\\new"\n') == 'let s = r"C:\\new"\n'
    assert fmt('let r = /a\\/b/i\n') == 'let r = /a\\/b/i\n'


def test_numbers_and_durations_keep_their_spelling() -> None:
    assert fmt("let a = 1.50\nlet b = 1.5h\nlet c = 90s\n") == "let a = 1.50\nlet b = 1.5h\nlet c = 90s\n"


def test_comments_are_preserved() -> None:
    text = ('# header\n'
            'let a = 1  # trailing\n'
            '# about the rule\n'
            'on git.push\n'
            '    branch="main"  # inner\n'
            '    run d\n'
            'let s = "# not a comment"  # a comment\n'
            '# footer\n')
    assert fmt(text) == ('# header\n'
                         'let a = 1  # trailing\n'
                         '# about the rule\n'
                         '# inner\n'
                         'L4: on git.push branch="main"\n'
                         '    run d\n'
                         'let s = "# not a comment"  # a comment\n'
                         '# footer\n')


def test_comments_that_move_above_a_declaration_keep_their_order() -> None:
    text = ('on all(\n'
            '    git.push as p,  # the push\n'
            '    # and then\n'
            '    git.tag as t,  # the tag\n'
            ') same <sha> within 1h run d\n')
    assert fmt(text).split("\n")[:3] == ["# the push", "# and then", "# the tag"]   # (it gave and then, the push, the tag)


def test_comments_in_a_test_block_stay_among_its_steps() -> None:
    # they went above the test "NAME": line, away from the steps they explain
    text = ('test "t":  # the name\n'
            '    # a push first\n'
            '    given git.push branch="main"\n'
            '\n'
            '    # then the rule runs\n'
            '    expect deploy  #   yes\n'
            '    expect not release  # one\n')
    out = fmt(text)
    assert out == text.replace("\n\n", "\n")   # (blank lines inside a test block go)
    assert fmt(out) == out
    many = 'test "t":\n    given git.push files=[  # a\n        "x",  # b\n    ]\n    expect none\n'
    assert fmt(many) == 'test "t":\n    # a\n    # b\n    given git.push files=["x"]\n    expect none\n'


def test_comments_inside_a_wrapped_declaration_move_above_it() -> None:
    text = ('on git.push  # one\n'
            '    branch="main"  # two\n'
            '    run d\n')
    # the author split the rule: it stays split (run on its own line), comments above it
    # (and it keeps its name, L1, now that it starts on line 3)
    assert fmt(text) == '# one\n# two\nL1: on git.push branch="main"\n    run d\n'


def test_a_rule_on_one_line_stays_on_one_line_and_a_split_one_stays_split() -> None:
    one = 'on git.push branch="main" run d timeout 1m\n'
    assert fmt(one) == one
    split = 'on git.push branch="main"\n    run d timeout 1m\n'
    assert fmt(split) == split
    assert fmt('on git.push\n  branch="main" run d\n  timeout 1m\n') == split


def test_blank_lines_collapse() -> None:
    text = '\n\n\nlet a = 1\n\n\n\nlet b = 2\n\n\n# c\n\n\n\n'
    assert fmt(text) == 'let a = 1\n\nlet b = 2\n\n# c\n'
    assert fmt("") == ""
    assert fmt("let a = 1") == "let a = 1\n"


def test_long_rules_are_wrapped() -> None:
    text = ('deploy_main: on git.push branch="main" author not in ["dependabot[bot]", "renovate[bot]"] '
            'run deploy with <sha>, "production" timeout 10m retry 2 backoff 30s\n')
    out = fmt(text)
    assert out == ('deploy_main: on git.push branch="main" author not in ["dependabot[bot]", "renovate[bot]"]\n'
                   '    run deploy with <sha>, "production" timeout 10m retry 2 backoff 30s\n')
    assert all(len(line) <= WIDTH for line in out.splitlines())
    assert parse(out)[0] == parse(text)[0] and fmt(out) == out


def test_long_policies_go_one_per_line() -> None:
    text = ('on git.push branch="main" run deploy with <payload.head_commit.id>, "a-rather-long-stage-name-here" '
            'timeout 10m retry 2 backoff 30s dedupe <payload.head_commit.id> for 1h busy skip\n')
    out = fmt(text)
    assert out.splitlines() == [
        'on git.push branch="main"',
        '    run deploy with <payload.head_commit.id>, "a-rather-long-stage-name-here"',
        "    timeout 10m", "    retry 2 backoff 30s", "    dedupe <payload.head_commit.id> for 1h", "    busy skip"]
    assert parse(out)[0] == parse(text)[0] and fmt(out) == out


def test_very_long_filters_put_one_condition_per_line() -> None:
    conds = " ".join(f'payload.field_{i}="value number {i}"' for i in range(6))
    text = f"on github.push {conds} run deploy with <sha> timeout 10m busy skip retry 3\n"
    out = fmt(text)
    lines = out.splitlines()
    assert lines[0] == "on github.push"
    assert lines[1:7] == [f'    payload.field_{i}="value number {i}"' for i in range(6)]
    assert lines[7] == "    run deploy with <sha> timeout 10m busy skip retry 3"
    assert parse(out)[0] == parse(text)[0] and fmt(out) == out


def test_test_blocks() -> None:
    text = 'test "t":  given git.push branch="main"   expect d with sha="x"\n  expect   none\n'
    assert fmt(text) == 'test "t":\n    given git.push branch="main"\n    expect d with sha="x"\n    expect none\n'


def test_a_file_with_syntax_errors_is_not_formatted() -> None:
    out, diags = format_text('let a = 1\non git.push branch= run d\nlet b   = 2\n')
    assert out is None
    assert [(d.code, d.span.start.line) for d in diags] == [("TRG001", 2)]


def test_a_rule_without_a_label_keeps_its_name_when_it_moves() -> None:
    # L<line> is the name of a rule without a label (SPEC §2): tests, run.* filters and the
    # journal know it by that name, so a rule the layout moves gets it as its label
    text = ('action a = exec "echo"\n\n\n\n'
            'on git.push branch="main" run a\n'
            'on git.push branch="dev" run a\n\n'
            'test "t":\n    given git.push branch="main"\n    expect L5\n')
    out = fmt(text)
    assert out == ('action a = exec "echo"\n\n'
                   'L5: on git.push branch="main" run a\n'
                   'L6: on git.push branch="dev" run a\n\n'
                   'test "t":\n    given git.push branch="main"\n    expect L5\n')
    assert fmt(out) == out
    assert [d.name for d in parse(out)[0].decls[1:3]] == ["L5", "L6"]
    # a rule that stays on its line stays as it was written
    same = 'action a = exec "echo"\n\non git.push branch = "main"  run a\n'
    assert fmt(same) == 'action a = exec "echo"\n\non git.push branch="main" run a\n'
    # a trailing comment that has to move above a split rule moves the rule too
    assert fmt('on git.push  # why\n    run a\n') == '# why\nL1: on git.push\n    run a\n'


def test_crlf_and_bom_are_normalised() -> None:
    assert fmt('\ufefflet a = 1\r\nlet b = 2\r\n') == "let a = 1\nlet b = 2\n"


def test_two_boms_are_dropped_and_fmt_is_idempotent() -> None:
    """Hypothesis found '\\ufeff\\ufeff ': fmt wrote '\\ufeff\\n', which formatted again to ''."""
    once = fmt("\ufeff\ufeff ")
    assert fmt(once) == once == fmt("")
    assert fmt("\ufeff\ufefflet a = 1\n") == "let a = 1\n"


def test_a_busy_signal_is_written_by_its_full_name() -> None:
    # as stop's: watchexec's --signal takes HUP, SIGHUP or hup; a name that is no signal stays
    text = "action app = exec \"app\"\non file.modified run app busy   signal hup\non git.push run app busy signal HUPP\n"
    assert fmt(text) == ("action app = exec \"app\"\non file.modified run app busy signal SIGHUP\n"
                         "on git.push run app busy signal HUPP\n")
    assert fmt(fmt(text)) == fmt(text)


def test_a_stop_signal_is_written_by_its_full_name() -> None:
    # watchexec's --stop-signal takes INT, SIGINT or sigint; fmt writes the one spelling
    text = 'action app = exec "python3" "app.py" stop int grace 30s\naction b = shell "x" stop   grace 2s\n'
    assert fmt(text) == 'action app = exec "python3" "app.py" stop SIGINT grace 30s\naction b = shell "x" stop grace 2s\n'
    assert fmt(fmt(text)) == fmt(text)
