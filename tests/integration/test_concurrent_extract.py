"""A batch's dealers are fetched concurrently (pipeline.extract -> client.fetch_many).

Real simulator over HTTP (one per module), real client, real landing files. The simulator's
request log stamps each call's arrival (`at`); with a `slow` fault of DELAY seconds on every
vehicle call, a call stays in flight at least DELAY after its arrival, so:

* the fetches overlap when arrivals come closer together than DELAY;
* never more than `max_concurrency` are in flight iff any max_concurrency + 1 consecutive
  arrivals span at least DELAY (the (c+1)-th call can only start when an earlier one has
  ended, i.e. DELAY after its arrival; c + 1 calls in flight at once would all have arrived
  within one DELAY plus the tiny answer time).

The batch: five dealers with vehicles (one also asks for parts, which it has no grant for:
`skipped`) and one without its Vehicle grant (`failed`: the others are still written).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import reliability
from dealer_feed import pipeline
from support import extract_and_validate
from dealer_feed.config import GroupConfig
from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed_tools.simulator import World, start_background

pytestmark = pytest.mark.reliability

T = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
DELAY = 0.3
SLACK = 0.05
"""Clock and scheduling slack on DELAY comparisons (seconds)."""
FAST, POLITE = ("fast", "fast-secret"), ("polite", "polite-secret")
GOOD = ["CX_C1", "CX_C2", "CX_C3", "CX_C4", "CX_C5"]
NO_GRANT = "CX_NG"
DEALERS = [*GOOD[:3], NO_GRANT, *GOOD[3:]]
VEHICLE = {"Vehicle": {"begins": "2026-01-01"}}
WORLD = {
    "seed": 13,
    "vendors": [{"username": FAST[0], "password": FAST[1], "requests_per_second": 1000},
                {"username": POLITE[0], "password": POLITE[1], "requests_per_second": 4}],
    "defaults": {"inventory": {"generated": {"size": 30, "bad_row_rate": 0.0}}},
    "dealers": [{"enterprise_code": "CX", "company_number": d.split("_")[1], "make_codes": ["KI"],
                 "grants": {} if d == NO_GRANT else VEHICLE} for d in DEALERS],
}
GROUP = GroupConfig.model_validate({
    "group": "concurrent",
    "dealers": [{"enterprise_code": "CX", "company_number": d.split("_")[1], "make_codes": ["KI"],
                 "datasets": ["vehicles", "parts"] if d == "CX_C1" else ["vehicles"]} for d in DEALERS],
})


@pytest.fixture(scope="module")
def sim():
    with start_background(World.model_validate(WORLD)) as handle:
        yield handle


def extract(sim, landing: Path, vendor=FAST, **settings) -> tuple[pipeline.RunContext, pipeline.DealerStepError | None]:
    """extract, then validate, of the whole batch into `landing`; the batch error it raised."""
    ctx = pipeline.RunContext(GROUP, T, landing=landing)
    options = {"timeout": 10, "max_attempts": 1, "requests_per_second": 1000} | settings
    with OpenTrackClient(sim.url, *vendor, **options) as client:
        try:
            extract_and_validate(ctx, list(DEALERS), client, {})
        except pipeline.DealerStepError as exc:
            return ctx, exc
    return ctx, None


def arrivals(sim, **match) -> list[float]:
    return sorted(e["at"] for e in sim.requests(operation="VehicleInventory", **match))


def files(landing: Path) -> dict[str, bytes]:
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*")) if p.is_file()}


def statuses(ctx: pipeline.RunContext) -> list[tuple[str, str, str, int]]:
    return [(s["dealer_id"], s["dataset"], s["status"], s["rows"])
            for dataset in ("vehicles", "parts") for s in pipeline.dealer_statuses(ctx, dataset)]


@pytest.fixture(scope="module")
def one_at_a_time(sim, tmp_path_factory):
    """The batch fetched with max_concurrency 1, every vehicle call slowed by DELAY."""
    sim.reset()
    sim.add_fault("slow", method="Vehicle", delay_seconds=DELAY)
    landing = tmp_path_factory.mktemp("one_at_a_time")
    ctx, error = extract(sim, landing, max_concurrency=1)
    return landing, ctx, error, arrivals(sim)


def test_fetches_overlap_within_max_concurrency_and_equal_one_at_a_time(sim, one_at_a_time, tmp_path, caplog):
    landing_1, ctx_1, error_1, arrived_1 = one_at_a_time
    sim.reset()
    sim.add_fault("slow", method="Vehicle", delay_seconds=DELAY)
    cap = 3

    with caplog.at_level(logging.INFO, logger="dealer_feed.pipeline"):
        ctx, error = extract(sim, tmp_path / "landing", max_concurrency=cap)
    arrived = arrivals(sim)

    # one at a time: each call arrives after the one before ended
    assert len(arrived_1) == len(arrived) == len(DEALERS)
    assert min(b - a for a, b in zip(arrived_1, arrived_1[1:])) >= DELAY - SLACK
    # concurrently: `cap` calls in flight together, never cap + 1; two rounds instead of six
    assert arrived[cap - 1] - arrived[0] < DELAY / 2
    assert min(b - a for a, b in zip(arrived, arrived[cap:])) >= DELAY - SLACK
    assert arrived[-1] - arrived[0] < (arrived_1[-1] - arrived_1[0]) / 2
    # the same batch outcome: the dealer without its grant failed alone, the same files written
    assert error is not None and error_1 is not None
    assert error.dealers == error_1.dealers == [NO_GRANT] and str(error) == str(error_1)
    assert statuses(ctx) == statuses(ctx_1)
    assert sorted(s for s in statuses(ctx) if s[2] != "ok") == [("CX_C1", "parts", "skipped", 0),
                                                              (NO_GRANT, "vehicles", "failed", 0)]
    assert files(tmp_path / "landing") == files(landing_1)
    assert all((ctx.dealer_dir("vehicles", d) / "good.parquet").exists() for d in GOOD)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("extract progress")]
    assert progress == [f"extract progress: {n}/{len(DEALERS)} dealers" for n in range(1, len(DEALERS) + 1)]
    reliability.record("concurrent extract", faults_injected=2, faults_survived=1, faults_failed_clearly=1,
                       rows_lost=0)


def test_rerun_reuses_raw_files_and_fetches_only_what_is_missing(sim, one_at_a_time):
    landing, ctx_1, _, _ = one_at_a_time
    before = files(landing)
    raw_times = {p: p.stat().st_mtime_ns for p in landing.rglob("raw.parquet")}
    sim.reset()

    ctx, error = extract(sim, landing, max_concurrency=3)

    fetched = sorted((e["dealer_id"], e["operation"]) for e in sim.requests())
    assert fetched == [("CX_C1", "PartsInventory"), (NO_GRANT, "VehicleInventory")]  # no raw file: tried again
    assert {p: p.stat().st_mtime_ns for p in landing.rglob("raw.parquet")} == raw_times
    assert error is not None and error.dealers == [NO_GRANT]
    assert statuses(ctx) == statuses(ctx_1)
    assert {k: v for k, v in files(landing).items() if "raw.parquet" in k} == {
        k: v for k, v in before.items() if "raw.parquet" in k}


def test_threads_share_one_rate_limiter_under_the_vendor_limit(sim, tmp_path):
    """The vendor may make 4 calls per second (sliding window; more are throttled, and with
    max_attempts 1 a throttle fails the dealer): 4 threads at 3.5/s stay under it."""
    sim.reset()
    rate = 3.5

    started = time.monotonic()
    ctx, error = extract(sim, tmp_path / "landing", vendor=POLITE, requests_per_second=rate, max_concurrency=4)

    calls = sim.requests(vendor=POLITE[0])
    assert [e["outcome"] for e in calls if e["outcome"] == "throttled"] == []
    at = sorted(e["at"] for e in calls)
    assert len(at) == len(DEALERS) + 1  # C1's parts too
    assert min(b - a for a, b in zip(at, at[1:])) >= 1 / rate - SLACK
    assert time.monotonic() - started >= (len(at) - 1) / rate - SLACK
    assert error is not None and error.dealers == [NO_GRANT]
    assert [s[2] for s in statuses(ctx) if s[1] == "vehicles" and s[0] in GOOD] == ["ok"] * len(GOOD)


def test_fetch_many_stops_starting_dealers_after_a_bug():
    """A non-OpenTrack exception (a bug) propagates; dealers not started yet are not fetched."""
    started: list[str] = []

    def fetch(dealer):
        started.append(dealer.dealer_id)
        raise RuntimeError("bug")

    with OpenTrackClient("http://127.0.0.1:9/", "u", "p", max_concurrency=1) as client:
        with pytest.raises(RuntimeError, match="bug"):
            client.fetch_many([GROUP.dealer(d) for d in DEALERS], fetch)
    assert started == [DEALERS[0]]
