"""The provider registry (SPEC §13), after sqlglot's dialects.

A webhook provider is one module of this package holding one
:class:`~triggerlang.providers.base.Provider` named ``PROVIDER``, and one line in
:data:`BUILTIN`. A third-party package adds one through the ``triggerlang.providers``
entry-point group (``name = "package.module:PROVIDER"``). Everything that knows about
providers reads them from here: the catalogue (so their events type-check), the checker's
route lints, the manifest's routes, the HTTP source's dispatch and verification,
``triggerc match --PROVIDER``, ``given PROVIDER.EVENT from "file.json"`` and the
dashboard's source list.

Start-up cost: :func:`get_provider` imports only the module it is asked for, and entry
points are scanned (``importlib.metadata``, tens of milliseconds) only for a name no
built-in has, or when every provider is listed (:func:`providers`); ``triggerc check`` on
a file that names only built-in sources never scans them.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from ..events import Event
from ..plugins import Registry
from .base import CI_STATUSES, REDACTED, ZERO_SHA, Provider, ProviderError

BUILTIN: tuple[str, ...] = (
    "github",
    "gitlab",
    "gitea",
    "bitbucket",
    "ci",
)
"""The built-in providers, in the order they are listed; each is ``triggerlang.providers.<name>``."""

ENTRY_POINT_GROUP = "triggerlang.providers"

REGISTRY: Registry[Provider] = Registry(
    ENTRY_POINT_GROUP, Provider, BUILTIN, lambda name: importlib.import_module(f"{__name__}.{name}").PROVIDER)
register = REGISTRY.register
"""Add (or replace) a provider at run time; for tests and embedding programs."""


def get_provider(name: str) -> Provider | None:
    """The provider called ``name``, or None (built-ins first, then entry points)."""
    return REGISTRY.get(name)


def provider_names() -> list[str]:
    """Every provider's name: the built-ins in :data:`BUILTIN` order, then the others by name."""
    return REGISTRY.names()


def providers() -> list[Provider]:
    """Every provider (imports each module, scans entry points)."""
    return [p for p in (get_provider(n) for n in provider_names()) if p is not None]


def normalise(provider: str, event_name: str, body: Any, headers: Mapping[str, str] | None = None) -> list[Event]:
    """Events for a delivery from ``provider``; ``body`` may be parsed JSON or raw bytes/text."""
    p = get_provider(provider)
    if p is None:
        raise ProviderError(f"unknown provider {provider!r} (expected one of {', '.join(provider_names())})")
    return p.normalise(event_name, body, headers)


def delivery_key(provider: str, headers: Mapping[str, str] | None, route: str | None = None) -> str | None:
    """The redelivery key of a webhook to ``route``, ``"<provider>:<id>"``, or None (see each
    provider's ``delivery_headers`` and ``delivery_per_route``; names are matched
    case-insensitively)."""
    p = get_provider(provider)
    return p.delivery_key(headers, route) if p is not None else None


__all__ = [
    "BUILTIN", "ENTRY_POINT_GROUP", "REGISTRY", "Provider", "ProviderError", "register", "get_provider", "provider_names",
    "providers", "normalise", "delivery_key", "CI_STATUSES", "REDACTED", "ZERO_SHA",
]
