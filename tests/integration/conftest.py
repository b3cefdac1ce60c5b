"""Integration fixtures: a real PostgreSQL for every test that wants one (never skipped).

- `pg_server` (session): a throwaway server (tests/pgserver.py), stopped at session end.
- `pg_url`: a fresh database on it for one test.
- `warehouse_url` (parametrised): the same test against SQLite (a file in tmp_path) and PostgreSQL.
- `warehouse`: an Engine on `warehouse_url`, migrated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

import pgserver


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    server = pgserver.get_server()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: pgserver.PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + f"_{id(request) % 100000}"
    url = pg_server.create_database(name)
    yield url
    try:
        pg_server.drop_database(name)
    except Exception:  # noqa: BLE001 - best effort; the server directory goes at session end
        pass


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def warehouse(warehouse_url: str):
    from dealer_feed.warehouse import make_engine
    from dealer_feed.warehouse.migrations import apply

    engine = make_engine(warehouse_url)
    apply(engine)
    yield engine
    engine.dispose()
