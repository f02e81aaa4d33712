"""Shared fixtures: consortia, nodes, stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSPHRASE = "test-passphrase"


@dataclass
class Org:
    id: str
    admin: object
    member: object
    node: object | None


@pytest.fixture(scope="session")
def demo_consortium(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The demonstration consortium's genesis and keys, made once per session."""
    from client.consortium import DEMO_DESCRIPTION, init_consortium
    from ledger.keys import load_key

    root = tmp_path_factory.mktemp("consortium")
    consortium, genesis = init_consortium(DEMO_DESCRIPTION, root, passphrase=PASSPHRASE,
                                          time=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    orgs: dict[str, Org] = {}
    for org in DEMO_DESCRIPTION["organisations"]:
        node_path = consortium.key_path(org["id"], "node")
        orgs[org["id"]] = Org(
            org["id"],
            load_key(consortium.key_path(org["id"], "admin"), PASSPHRASE),
            load_key(consortium.key_path(org["id"], "member1"), PASSPHRASE),
            load_key(node_path, PASSPHRASE) if node_path.exists() else None,
        )
    return consortium, genesis, orgs


def _postgres_reason() -> str | None:
    try:
        from tests.harness.postgres import postgres_available
    except ImportError:
        return "tests/harness/postgres.py is missing"
    return postgres_available()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    reason = _postgres_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)
    from tests.harness.postgres import PostgresServer

    with PostgresServer() as server:
        yield server


_db_counter = 0


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite in a temp dir, or PostgreSQL from the harness."""
    global _db_counter
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server = request.getfixturevalue("postgres_server")
    _db_counter += 1
    return str(server.create_database(f"tl_{os.getpid()}_{_db_counter}"))  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    """Close every store a test opened, so no database connection outlives it."""
    yield
    from tests.helpers import OPEN_STORES

    while OPEN_STORES:
        OPEN_STORES.pop().close()
