"""``python -m triggerlang.cli``: the ``triggerc`` program."""

from . import entry

if __name__ == "__main__":  # pragma: no cover
    entry()
