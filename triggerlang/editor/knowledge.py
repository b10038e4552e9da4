"""What the editor says about the language's words: policies, keywords, common fields.

The catalogue (:mod:`triggerlang.check.catalogue`) is the one source of sources, events and
field *types*; this module only adds prose for hover and completion: what a policy does
(SPEC §3), what a keyword starts, and a line on the meaning of the fields the catalogue
does not document itself (SPEC §4). When the catalogue gains a doc for a field
(``EventSpec.field_docs``), :func:`field_doc` prefers it.
"""

from __future__ import annotations

from ..check import catalogue as C

POLICY_DOCS: dict[str, str] = {
    "debounce": "`debounce D`: wait until the rule has seen no matching event for D, then run once with "
                "the last event; `<paths>` then lists every path seen. Default: none (file rules: 100ms).",
    "busy": "`busy queue|skip|restart|parallel|signal SIGNAL`: when a run of this rule is still going, run "
            "after it (queue, the default), drop the new one (skip), stop the old one and start the new one "
            "(restart: SIGTERM, then SIGKILL after 5s), run side by side (parallel), or send the running one "
            "SIGNAL instead of starting another (signal: `busy signal SIGHUP` for a server that reloads on it).",
    "timeout": "`timeout D`: stop the run's whole process group after D; the run ends `timed_out`. "
               "Default: 1h.",
    "retry": "`retry N [backoff D]`: re-run a failed run up to N times, waiting D, 2D, 4D... "
             "(default backoff 5s). Default: 0.",
    "dedupe": "`dedupe <field> for D`: skip a run whose key was already run by this rule within D.",
}

BUSY_MODE_DOCS: dict[str, str] = {
    "queue": "run after the running one (the default)",
    "skip": "drop the new run",
    "restart": "stop the running one (SIGTERM, then SIGKILL after 5s) and start the new one",
    "parallel": "run side by side",
    "signal": "`busy signal SIGHUP`: send the running run's process group SIGNAL and start no new run "
              "(recorded skipped, naming the run signalled); with no run going, start one",
}

KEYWORD_DOCS: dict[str, str] = {
    "let": "`let NAME = VALUE`: a named constant usable wherever a value goes",
    "secret": '`secret NAME = env "VAR"` / `secret NAME = file "path"`: read when serve starts; '
              "never written anywhere, only its reference",
    "source": "`source KIND option=value ...`: configures a source (routes, secrets, watch roots)",
    "action": "`action NAME(PARAMS) = BODY`: something a rule can run (exec, shell or http post)",
    "on": "`[LABEL:] on TRIGGER [FILTER] run ACTION [with ARGS] [POLICIES]`: a rule",
    "test": '`test "name":` then `given ...` and `expect ...` lines: a rule test (SPEC §10)',
    "run": "`run ACTION [with ARGS]`: the action the rule runs",
    "with": "`with ARGS`: the action's arguments, positional or `name=value`; `<field>` is an event field, "
            "`<field ~ /re/>` the part of it the regex finds (its group, if it has one)",
    "has": "`has FIELD`: the field is present and not null",
    "not": "`not CONDITION`",
    "and": "both conditions hold (conditions side by side are joined by `and`)",
    "or": "either condition holds",
    "every": "`every D`: a schedule (`every 15m`)",
    "cron": '`cron "m h dom mon dow" [tz "Area/City"]`: a 5-field cron schedule',
    "catch up": "`every D catch up`, `cron \"...\" catch up`: a tick missed while serve was down is made up "
                "once at its start (systemd's `Persistent=true`); it carries `catch_up=true` and `missed`",
    "given": "`given SOURCE.EVENT field=value ... [from \"payload.json\"]`: the test's event",
    "expect": "`expect RULE [with ARGS]`, `expect not RULE`, `expect only RULE, ...`, `expect none`",
    "exec": "`exec PROGRAM ARG...`: runs PROGRAM with that argv, never through a shell; a bare name is a parameter",
    "shell": '`shell "script"`: runs through /bin/sh -c; parameters only as TRG_INPUT_<NAME> variables',
    "http": '`http post "URL" [secret=NAME]`: POSTs the run as JSON, signed when a secret is given',
    "cwd": '`cwd "dir"`: the working folder of the action (relative to the rules file)',
    "env": '`env NAME="value"`: an environment variable for the action',
    "stop": "`stop SIGNAL [grace D]`: how a busy restart, a cancel or a timeout stops the action's processes: "
            "SIGNAL (default SIGTERM), then SIGKILL after D (default 5s)",
    "grace": "`stop SIGNAL grace D`: how long the processes get after the stop signal before SIGKILL",
}

_FIELD_DOCS: dict[str, str] = {
    "path": "the path, relative to the root, with / separators (http: the request path)",
    "name": "the file name (last path segment)",
    "ext": "the file extension, without the dot",
    "change": "created, modified or deleted",
    "paths": "every path seen while debouncing",
    "repo": "the repository",
    "ref": "the full ref name (refs/heads/main)",
    "branch": "the branch name (empty for a tag)",
    "tag": "the tag name (empty for a branch)",
    "before": "the commit the ref pointed at before",
    "after": "the commit the ref points at now",
    "sha": "the commit (for a push: = after)",
    "forced": "the push rewrote history",
    "created": "the ref was created",
    "deleted": "the ref was deleted",
    "author": "who made the change",
    "author_email": "the author's e-mail address",
    "message": "the head commit's message",
    "files": "the paths changed between before and after",
    "commits": "how many commits the push brought",
    "method": "the HTTP method, upper case",
    "headers": "the request headers (lower-case names): headers.x-name",
    "query": "the query parameters: query.name",
    "payload": "the parsed JSON body: payload.a.b (untyped)",
    "text": "the raw body as text",
    "remote": "the client's address",
    "delivery": "the provider's delivery id",
    "action": "the webhook's action (opened, closed, completed...)",
    "sender": "the account that triggered the webhook",
    "number": "the pull/merge request or issue number",
    "title": "the title",
    "base": "the target branch",
    "head": "the source branch",
    "merged": "the pull request was merged",
    "draft": "the pull request is a draft",
    "labels": "the label names",
    "state": "the state (open, closed...)",
    "url": "the web address of the object",
    "workflow": "the workflow's name",
    "status": "the status (ci.completed: success, failure, cancelled, skipped)",
    "conclusion": "the conclusion (success, failure, cancelled, skipped...)",
    "event": "the event that started the workflow",
    "app": "the app that ran the checks",
    "provider": "github, gitlab or generic",
    "pipeline": "the pipeline's name",
    "pipeline_id": "the pipeline's id",
    "time": "when it fired (ISO 8601)",
    "scheduled": "when it was planned to fire (ISO 8601)",
    "catch_up": "true on the tick a `catch up` schedule made up at serve's start (absent on the others)",
    "missed": "on a catch-up tick: how many planned times passed while serve was down",
    "rule": "the rule's name",
    "exit_code": "the run's exit code",
    "duration": "how long the run took",
    "inputs": "the run's inputs: inputs.NAME",
    "run_id": "the run's id",
    "event_id": "the event's id",
}

FIELD_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("ci", "status"): ("success", "failure", "cancelled", "skipped"),
    ("ci", "provider"): ("github", "gitlab", "generic"),
    ("file", "change"): ("created", "modified", "deleted"),
    ("run", "status"): ("succeeded", "failed", "timed_out", "cancelled", "interrupted"),
    ("github", "conclusion"): ("success", "failure", "neutral", "cancelled", "skipped", "timed_out",
                               "action_required", "stale"),
    ("github", "status"): ("requested", "in_progress", "completed", "queued", "pending", "waiting"),
}
"""Values a field commonly takes, offered after ``field =`` (never enforced)."""

EVENT_FIELD_VALUES: dict[tuple[str, str, str], tuple[str, ...]] = {
    # GitHub's documented `action` values per webhook event ("Webhook events and payloads"),
    # the ones rules filter on most first (as a workflow's `on: pull_request: types:` lists them)
    ("github", "pull_request", "action"): (
        "opened", "synchronize", "reopened", "closed", "edited", "ready_for_review", "converted_to_draft",
        "labeled", "unlabeled", "assigned", "unassigned", "review_requested", "review_request_removed",
        "auto_merge_enabled", "auto_merge_disabled", "enqueued", "dequeued", "milestoned", "demilestoned",
        "locked", "unlocked"),
    ("github", "pull_request_review", "action"): ("submitted", "edited", "dismissed"),
    ("github", "issues", "action"): (
        "opened", "closed", "reopened", "edited", "labeled", "unlabeled", "assigned", "unassigned", "deleted",
        "transferred", "pinned", "unpinned", "milestoned", "demilestoned", "locked", "unlocked"),
    ("github", "issue_comment", "action"): ("created", "edited", "deleted"),
    ("github", "release", "action"): ("published", "released", "prereleased", "created", "edited", "unpublished",
                                      "deleted"),
    ("github", "workflow_run", "action"): ("completed", "requested", "in_progress"),
    ("github", "check_suite", "action"): ("completed", "requested", "rerequested"),
    ("github", "check_run", "action"): ("completed", "created", "rerequested", "requested_action"),
    ("github", "workflow_job", "action"): ("completed", "queued", "in_progress", "waiting"),
    # GitLab's documented `object_attributes.action` values per event ("Webhook events"; a
    # release's `action` is at the top level), the ones rules filter on most first. A wiki
    # page's are those of its create, update and delete (the docs show `create` only)
    ("gitlab", "merge_request", "action"): (
        "open", "update", "merge", "close", "reopen", "approved", "unapproved", "approval", "unapproval"),
    ("gitlab", "issue", "action"): ("open", "close", "reopen", "update"),
    ("gitlab", "work_item", "action"): ("open", "close", "reopen", "update"),
    ("gitlab", "note", "action"): ("create", "update"),
    ("gitlab", "release", "action"): ("create", "update", "delete"),
    ("gitlab", "milestone", "action"): ("create", "close", "reopen"),
    ("gitlab", "wiki_page", "action"): ("create", "update", "delete"),
    ("gitlab", "emoji", "action"): ("award", "revoke"),
}
"""Values a field commonly takes on one event (``(source, event, field)``), offered after
``field =`` before :data:`FIELD_VALUES`' for the field: a webhook's ``action`` differs
from event to event. Never enforced, for GitHub and GitLab alike (``check`` does not warn
on another value): both add actions over time (a GitLab merge request's approval
actions came years after ``open`` and ``merge``), so a server newer than this list
sends values it lacks."""


def field_doc(source: str, event: str, name: str) -> str:
    """A line on what a field means: the catalogue's own doc when it has one."""
    spec = C.get_event(source, event)
    docs = getattr(spec, "field_docs", None) if spec is not None else None
    if docs and docs.get(name):
        return docs[name]
    return _FIELD_DOCS.get(name, "")
