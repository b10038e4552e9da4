"""triggerlang: rules in ``.trg`` files that turn outside events into runs of actions.

The pipeline is the architecture, each phase taking only the previous phase's output::

    syntax (parse: text -> AST + diagnostics)
      -> check (catalogue, names, types, lints -> diagnostics)
      -> compile (matchers + the JSON listener manifest)
      -> runtime (sources -> engine -> journal -> executor)

``triggerlang.api`` is the public entry point for programs.
"""

__version__ = "0.1.0"

PROJECT_URL = "https://github.com/triggerlang/triggerlang"
"""The project's home (pyproject.toml's [project.urls] say the same; a test checks it)."""
