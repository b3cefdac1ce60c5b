"""The pipeline's steps of the demo group as plain calls (no Airflow), for tests of run order,
late dealers and landing files: extract (real OpenTrack client against the simulator),
transform and load (real warehouse: SQLite file or the tests' PostgreSQL)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dealer_feed import pipeline
from dealer_feed.config import find_group
from dealer_feed.warehouse import make_engine
from dealer_feed.warehouse.migrations import apply
from support import extract_and_validate, statuses_of

DAYS = [datetime(2026, 11, 20, 6, tzinfo=timezone.utc) + timedelta(days=n) for n in range(3)]
BUSINESS = ("service_requests", "service_request_events", "feed_vehicles", "quarantine", "etl_run_dealers",
            "parts_inventory", "repair_orders", "inspections", "work_orders")
"""Every table a run writes except etl_runs (Airflow run id, wall-clock timings): compared by content hash."""
RUN_COLUMNS = ("run_id", "status", "dealers_ok", "dealers_failed", "vehicles_seen", "sr_created", "sr_updated",
               "sr_anchor_reset", "sr_auto_closed", "vehicles_unchanged", "vehicles_ignored", "quarantined",
               "counts_json")
"""etl_runs' business columns."""


@dataclass
class Steps:
    """One warehouse and one landing area; extract / transform / load of run `day` (index into DAYS)."""

    url: str
    landing: Path
    sim_url: str | None = None

    def __post_init__(self) -> None:
        self.group = find_group("demo")
        self.engine = make_engine(self.url)
        apply(self.engine)

    def ctx(self, day: int) -> pipeline.RunContext:
        return pipeline.RunContext(group=self.group, logical_time=DAYS[day], landing=self.landing)

    def extract(self, day: int, dealers: list[str] | None = None, **client_settings: Any) -> list[dict[str, Any]]:
        """extract (as one batch), then validate, of the dealers (all by default); a failed dealer is its
        `failed` status."""
        from dealer_feed.opentrack.client import OpenTrackClient
        from dealer_feed.warehouse import reads

        ids = dealers or list(self.group.dealer_ids)
        ctx = self.ctx(day)
        previous = reads.previous_good_rows(self.engine, self.group.group, ids, before=ctx.T)
        settings = {"timeout": 10, "max_attempts": 1, "backoff_seconds": 0.01} | client_settings
        with OpenTrackClient(self.sim_url, "dealer-feed-vendor", "demo-secret", **settings) as client:
            try:
                return extract_and_validate(ctx, ids, client, previous)
            except pipeline.DealerStepError:
                return statuses_of(ctx, ids)

    def transform(self, day: int) -> dict[str, Any]:
        return pipeline.transform(self.ctx(day), self.engine)

    def load(self, day: int) -> dict[str, Any]:
        return pipeline.load(self.ctx(day), self.engine)

    def run(self, day: int) -> dict[str, Any]:
        self.extract(day)
        self.transform(day)
        return self.load(day)

    def copy_extract_from(self, source: Path, day: int) -> None:
        """Stand-in for extract of a run already extracted into `source` (extract is a pure
        function of the run's immutable raw files): copy that run's dealer directories."""
        ctx = self.ctx(day)
        for dataset in ("vehicles", "parts", "repair_orders"):
            for dealer_id in self.group.dealer_ids:
                src = pipeline.RunContext(group=self.group, logical_time=DAYS[day], landing=source).dealer_dir(
                    dataset, dealer_id)
                if src.exists():
                    shutil.copytree(src, ctx.dealer_dir(dataset, dealer_id), dirs_exist_ok=True)

    def business(self) -> dict[str, Any]:
        return business(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def business(engine) -> dict[str, Any]:
    """Content hash of every business table, and etl_runs' business columns (every group's)."""
    import sqlalchemy as sa

    from support import table_hash

    out: dict[str, Any] = {t: table_hash(engine, t) for t in BUSINESS}
    with engine.connect() as conn:
        out["etl_runs"] = [tuple(map(str, r)) for r in conn.execute(sa.text(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM etl_runs ORDER BY logical_time, run_id"))]  # noqa: S608
    return out


def extract_every_day(sim_url: str, base: Path) -> Path:
    """The demo group's runs of DAYS extracted and validated once into `base`/landing (real
    client against the simulator, real validation): what several tests copy instead of fetching."""
    steps = Steps(f"sqlite:///{base / 'scratch.db'}", base / "landing", sim_url)
    for day in range(len(DAYS)):
        steps.extract(day)
    steps.close()
    return base / "landing"
