"""Correlation triggers at run time (SPEC §11.3-§11.5): a pure engine over explicit state.

- :mod:`.clock` — instants, durations, cron instants (no wall clock is read here);
- :mod:`.spec` — a manifest's correlation rules compiled for the engine, and the member
  index (the rule index of :mod:`triggerlang.compile.index` over every member);
- :mod:`.state` — the state the engine reads and writes (:class:`~.state.State`) and
  :class:`~.state.MemoryState`, the in-memory one used by ``triggerc match`` and rule tests;
- :mod:`.engine` — :class:`~.engine.Correlator`: admission, fires, expiry, absence
  windows, bounds and reloads, over a state and the times its caller passes in;
- :mod:`.sim` — a dry run of ordinary and correlation rules together with a virtual clock
  (what ``triggerc match`` and ``triggerc test`` drive);
- :mod:`.render` — outcomes and explanations as text.

Nothing in this package imports a server, watcher or database library: ``check``,
``match`` and ``test`` import it and must stay lean. A durable state (the journal's
tables) implements the same :class:`~.state.State` protocol in the runtime.
"""
