"""One registry shape for every extension point (after sqlglot's dialects and plug-ins).

A :class:`Registry` holds records by name: the built-ins (looked up without any scan),
records added at run time with :meth:`Registry.register`, and the records third-party
packages publish through an entry-point group. The entry points are scanned
(``importlib.metadata``, tens of milliseconds) only when a name is not a built-in, or when
every name is listed, and once per process.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class PluginError(RuntimeError):
    """An entry point that does not load, or not to the record it should: a broken install."""


class Registry(Generic[T]):
    """Records of type ``record_type`` by their ``name``.

    ``builtin(name)`` returns a built-in record or None, for the names in
    ``builtin_names``; ``not_here`` are names that belong to another registry (no scan for
    them either).
    """

    def __init__(self, group: str, record_type: type, builtin_names: Iterable[str],
                 builtin: Callable[[str], T | None], not_here: Iterable[str] = ()) -> None:
        self.group = group
        self.record_type = record_type
        self.builtin_names = tuple(builtin_names)
        self._builtin = builtin
        self._not_here = frozenset(not_here)
        self._loaded: dict[str, T] = {}
        self._entry_points: dict[str, Any] | None = None

    def entry_points(self) -> dict[str, Any]:
        if self._entry_points is None:
            from importlib.metadata import entry_points

            self._entry_points = {ep.name: ep for ep in entry_points(group=self.group)
                                  if ep.name not in self.builtin_names}
        return self._entry_points

    def register(self, record: T) -> T:
        """Add (or replace) a record at run time; for tests and embedding programs."""
        if not isinstance(record, self.record_type):
            raise TypeError(f"not a {self.record_type.__name__}: {record!r}")
        self._loaded[record.name] = record  # type: ignore[attr-defined]
        return record

    def unregister(self, name: str) -> None:
        self._loaded.pop(name, None)

    def get(self, name: str) -> T | None:
        found = self._loaded.get(name)
        if found is not None:
            return found
        if name in self.builtin_names:
            found = self._builtin(name)
        elif name in self._not_here:
            return None
        else:
            ep = self.entry_points().get(name)
            if ep is None:
                return None
            try:
                found = ep.load()
            except Exception as e:
                raise PluginError(f"the plug-in {self.group}:{name} ({ep.value}) does not load: {e}") from e
            if not isinstance(found, self.record_type) or getattr(found, "name", None) != name:
                raise PluginError(f"the plug-in {self.group}:{name} ({ep.value}) is not a "
                                  f"{self.record_type.__name__} named {name!r}")
        if found is not None:
            self._loaded[name] = found
        return found

    def plugins_in_use(self) -> list[str]:
        """Names of the records this process has used that are not built-ins (entry points,
        or records added with :meth:`register`), sorted."""
        return sorted(set(self._loaded) - set(self.builtin_names))

    def names(self) -> list[str]:
        """The built-ins in their order, then every other name, sorted."""
        extra = (set(self.entry_points()) | set(self._loaded)) - set(self.builtin_names)
        return [*self.builtin_names, *sorted(extra)]
