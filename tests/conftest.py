"""Suite-wide settings.

The compiled-rules cache (triggerlang/compile/cache.py) lives in the user's cache folder;
tests point it at a temporary folder of their own (inherited by every `triggerc`
subprocess they start), so running the suite leaves nothing behind in ~/.cache.
"""

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="triggerlang-test-cache-")


def pytest_configure(config):
    os.environ.setdefault("TRIGGERLANG_CACHE_DIR", _CACHE)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
