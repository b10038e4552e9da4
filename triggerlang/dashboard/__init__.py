"""The dashboard: a read-only web page and JSON API over the journal.

``triggerc dashboard`` serves it on its own; ``triggerc serve --dashboard`` mounts the
same routes on the running HTTP listener (``serve`` imports :func:`app.dashboard_routes`).
See :mod:`triggerlang.dashboard.app` for the URL layout, access rules and live updates.
Nothing is imported here, so ``import triggerlang.dashboard`` stays cheap.
"""
