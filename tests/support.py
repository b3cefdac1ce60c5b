"""Plain helpers shared by tests (import from here, never `from conftest import ...`:
several conftest.py files exist and which one Python calls `conftest` depends on order)."""

from __future__ import annotations

import atexit
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dealer_feed.config import PROJECT_ROOT as ROOT

__all__ = ["ROOT", "TABLES", "at_once", "free_port", "table_hash", "table_hashes"]

T = TypeVar("T")

TABLES = ("etl_runs", "etl_run_dealers", "service_requests", "service_request_events", "inspections",
          "work_orders", "feed_vehicles", "quarantine", "parts_inventory", "repair_orders")
"""Every warehouse table a run writes (compared by content hash to prove reruns change nothing)."""


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together by a barrier (to make them race); their
    results in order, or the first call's error re-raised."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [f.result() for f in futures]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def table_hash(engine, table: str) -> str:
    """sha256 of a table's rows, independent of physical order (warehouse.reads.table_hash)."""
    from dealer_feed.warehouse.reads import table_hash as warehouse_table_hash

    return warehouse_table_hash(engine, table)


def table_hashes(engine) -> dict[str, str]:
    return {t: table_hash(engine, t) for t in TABLES}


def statuses_of(ctx, dealer_ids) -> list[dict]:
    """Every status.json of `dealer_ids` in the run, one per dealer and dataset, in dealer order."""
    from dealer_feed import pipeline

    return [s for d in dealer_ids for dataset in ctx.group.dealer(d).datasets
            for s in pipeline.dealer_statuses(ctx, dataset, [d])]


def extract_and_validate(ctx, dealer_ids, client, previous_good_rows) -> list[dict]:
    """The DAG's `extract` of a batch, then `validate` of its dealers, as one call: validate runs after a
    failed extract too (as in the DAG), then the first step's DealerStepError is raised; else every status."""
    from dealer_feed import pipeline

    errors = []
    for step in (lambda: pipeline.extract(ctx, list(dealer_ids), client),
                 lambda: pipeline.validate_landed(ctx, dealer_ids, previous_good_rows)):
        try:
            step()
        except pipeline.DealerStepError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return statuses_of(ctx, dealer_ids)


class SharedServer:
    """One server per test process (the PostgreSQL and S3 test servers): started on first use by
    `start`, stopped at exit or by stop(); a stopped one is started again on the next get()."""

    def __init__(self, start: Callable[[], T]) -> None:
        self._start = start
        self._server: T | None = None

    def get(self) -> T:
        if self._server is None or self._server._stopped:
            self._server = self._start()
            atexit.register(self._server.stop)
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
