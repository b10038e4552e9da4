"""The generic CI route (SPEC §4): a JSON POST to ``/ci`` is one ``ci.completed``.

``token=`` checks ``Authorization: Bearer <token>``; ``hmac=`` checks ``X-Signature-256``
(or the ``header=`` given). ``Idempotency-Key`` is the delivery key, so a CI script may
retry its POST safely. Every other provider's completions (GitHub ``workflow_run``, GitLab
``pipeline``...) become ``ci.completed`` events too, through their own modules.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..events import Event
from ..spec import ANY, MAP, STR
from .base import CI_STATUSES, Provider, ProviderError, Verification, headers_data, json_kind, need_body, need_text, put, ref_fields


_CI_OPTIONAL = ("branch", "tag", "ref", "sha", "url", "repo")


def normalise(body: dict, headers: Mapping[str, str] | None = None) -> list[Event]:
    """One ``ci.completed`` event from a generic JSON POST to the CI route.

    The body is ``{pipeline, status, branch?, tag?, ref?, sha?, url?, repo?, provider?}``.
    ``pipeline`` is a required non-empty string; ``status`` must be one of success,
    failure, cancelled, skipped (no synonyms: the sender is ours to shape); ``provider``
    defaults to ``generic``. Optional fields must be strings (``null`` counts as absent).
    ``ref`` and ``branch``/``tag`` complete each other: ``ref: refs/heads/x`` gives
    ``branch: x`` and ``branch: x`` gives ``ref: refs/heads/x``.
    """
    body = need_body(body, "CI")
    pipeline = need_text(body, "pipeline", "CI")
    status = body.get("status")
    if status not in CI_STATUSES:
        allowed = ", ".join(CI_STATUSES)
        got = json.dumps(status) if isinstance(status, str) else json_kind(status)
        raise ProviderError(f"CI payload 'status' must be one of {allowed}, not {got}")
    provider = body.get("provider", "generic")
    if provider is None:
        provider = "generic"
    if not isinstance(provider, str) or not provider:
        raise ProviderError("CI payload 'provider' must be a non-empty string")
    data: dict[str, Any] = {"provider": provider, "pipeline": pipeline, "status": status}
    for key in _CI_OPTIONAL:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ProviderError(f"CI payload '{key}' must be a string")
        put(data, **{key: value})
    if "ref" in data:
        for key, value in ref_fields(data["ref"]).items():
            data.setdefault(key, value)
    elif "tag" in data:
        data["ref"] = f"refs/tags/{data['tag']}"
    elif "branch" in data:
        data["ref"] = f"refs/heads/{data['branch']}"
    data["payload"] = body
    put(data, headers=headers_data(headers))
    return [Event(source="ci", type="completed", data=data)]


def _normalise(event_name: str, body: Any, headers: Mapping[str, str] | None = None) -> list[Event]:
    return normalise(body, headers)


PROVIDER = Provider(
    name="ci",
    title="CI (generic)",
    route="/ci",
    doc="CI completions from GitHub, GitLab or a generic JSON POST",
    events={
        "completed": (
            {
                "provider": STR,
                "pipeline": STR,
                "status": STR,
                "repo": STR,
                "ref": STR,
                "branch": STR,
                "tag": STR,
                "sha": STR,
                "url": STR,
                "payload": ANY,
                "headers": MAP,
            },
            "a CI pipeline finished: status is success, failure, cancelled or skipped",
        ),
    },
    normaliser=_normalise,
    verifications=(
        Verification("token", "bearer", "Authorization", header_scheme="token"),
        Verification("hmac", "hmac", "X-Signature-256", custom_header=True),
    ),
    fixed_event="completed",
    delivery_headers=("Idempotency-Key",),
    delivery_per_route=True,
    common=None,
    open_events=False,
    ci_route="always",
    ref_events=frozenset({"completed"}),
)
