"""Fault matrix (issue 14, "The suite"): every fault kind the simulator can inject, on one
dealer of the three-dealer demo group, through the pipeline `dealer-feed run` drives.

Per row: the fault (simulator.world.FaultKind) on ZE_ZE8's calls of the first feed date,
then `runner.run_group` (migrate, extract per batch, validate, transform, load) with a real
OpenTrack client (fast retries) against the simulator over HTTP and a real SQLite file.
Expected outcomes:

- `retried`: the fault clears within the client's attempts; all three dealers load.
- `fails_dealer`: ZE_ZE8 fails with the row's typed OpenTrack error (permanent errors after
  one call, transient ones after every attempt); its status.json is `failed` with a fix
  line; ZE_ZE7 and ZE_ZE9 load (run `partial`).
- `quarantined` (forbidden_bytes): the answer is read at the first call, the vehicle with
  the bad value is quarantined with rule `forbidden_character` and the dealer's other rows
  load (docs/RUNBOOK.md: not an error; the dealership corrects the value in the DMS). The
  run's raw file is immutable, so clearing the task keeps the row quarantined: the
  warehouse differs from a clean run by that one vehicle only, and nothing is lost.

Then the fault is removed and, as on-call does, the failed dealer is run again for the same
feed time (`dealer-feed run --dealers ZE_ZE8`: its extract, then the load's late-dealer path
adds it to the applied run). The warehouse must equal a clean run's (one content hash per
business table, reads.BUSINESS_TABLES, plus etl_runs' business columns). The module ends
with one summary table on the terminal.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dealer_feed.config import find_group
from dealer_feed.landing import read_json
from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.opentrack.errors import (
    AccessNotGrantedError,
    AuthenticationError,
    OpenTrackError,
    ServiceUnavailableError,
    UnknownDealerError,
)
from dealer_feed.pipeline import RunContext
from dealer_feed.runner import RunOutcome, run_group
from dealer_feed_tools.simulator import SimulatorHandle, start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, FaultKind, load_world
from dealer_feed.warehouse import make_engine
from dealer_feed.warehouse.reads import BUSINESS_TABLES, read_frame, table_hash
import reliability
from run_steps import DAYS, RUN_COLUMNS

pytestmark = pytest.mark.reliability

DEALER = "ZE_ZE8"
T = DAYS[0]
ATTEMPTS = 3
CLIENT = dict(timeout=0.5, max_attempts=ATTEMPTS, max_wait_seconds=10, backoff_seconds=0.01,
              max_backoff_seconds=0.05, requests_per_second=500)
"""Fast retries: a `slow` answer (1 s) is past the 0.5 s timeout; backoff in milliseconds."""
SEQUENCED = {"service_request_events": "event_no"}
"""Columns numbered in apply order: a late dealer's events are numbered after its run's
(test_late_dealers), so their content is compared without the number."""


@dataclass(frozen=True)
class Row:
    """One fault of the matrix and what the run must do with it."""

    kind: FaultKind
    expect: str  # retried | fails_dealer | quarantined
    error: type[OpenTrackError] | None = None
    times: int | None = None  # None: permanent (every call of the date)
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def id(self) -> str:
        return self.label or self.kind

    @property
    def calls(self) -> int:
        """ZE_ZE8's Vehicle calls in the faulty run: permanent errors are never retried."""
        if self.expect == "retried":
            return (self.times or 0) + 1
        if self.expect == "fails_dealer" and self.error is not None and self.error.transient:
            return ATTEMPTS
        return 1


ROWS = [
    Row("http_500", "retried", times=ATTEMPTS - 1),
    Row("http_503", "retried", times=ATTEMPTS - 1),
    Row("slow", "retried", times=ATTEMPTS - 1, options={"delay_seconds": 1.0}),
    Row("drop", "retried", times=ATTEMPTS - 1),
    Row("truncate", "retried", times=ATTEMPTS - 1),
    Row("throttle", "retried", times=ATTEMPTS - 1),
    Row("forbidden_bytes", "quarantined", times=None, options={"field": "Model", "payload": "\x00\x01"}),
    Row("auth_failed", "fails_dealer", AuthenticationError),
    Row("not_granted", "fails_dealer", AccessNotGrantedError),
    Row("grant_ended", "fails_dealer", AccessNotGrantedError),
    Row("unknown_dealer", "fails_dealer", UnknownDealerError),
    Row("http_503", "fails_dealer", ServiceUnavailableError, label="http_503 permanent on the run date"),
    Row("drop", "fails_dealer", ServiceUnavailableError, label="drop permanent on the run date"),
]


def test_every_fault_kind_has_a_matrix_row():
    """A fault kind added to the simulator without a row here fails the suite."""
    assert set(typing.get_args(FaultKind)) == {row.kind for row in ROWS}


# --------------------------------------------------------------------------- fixtures


class RecordingClient(OpenTrackClient):
    """The real client; keeps the typed errors its vehicle calls raised (the pipeline turns
    them into status.json text), so the test can name the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[OpenTrackError] = []

    def vehicle_inventory(self, dealer, as_of):  # type: ignore[no-untyped-def]
        try:
            return super().vehicle_inventory(dealer, as_of)
        except OpenTrackError as exc:
            self.errors.append(exc)
            raise


@dataclass
class Warehouse:
    """One SQLite warehouse and landing area, run through `run_group` as `dealer-feed run` does."""

    root: Path
    sim: SimulatorHandle

    def __post_init__(self) -> None:
        self.group = find_group("demo")
        self.engine = make_engine(f"sqlite:///{self.root / 'warehouse.db'}")
        self.said: list[str] = []
        self.reference: dict[str, str] = {}

    def run(self, dealers: tuple[str, ...] = ()) -> tuple[RunOutcome, RecordingClient]:
        with RecordingClient(self.sim.url, "dealer-feed-vendor", "demo-secret", **CLIENT) as client:
            outcome = run_group(self.group, T, self.engine, dealers=dealers, landing=self.root / "landing",
                                client=client, say=self.said.append)
        return outcome, client

    def status(self, dealer_id: str) -> dict[str, Any]:
        ctx = RunContext(group=self.group, logical_time=T, landing=self.root / "landing")
        return read_json(ctx.dealer_dir("vehicles", dealer_id) / "status.json")

    def hashes(self) -> dict[str, str]:
        """Content hash per business table (sequence numbers left out), and etl_runs' business columns."""
        out = {}
        for table in BUSINESS_TABLES:
            if table in SEQUENCED:
                with self.engine.connect() as conn:
                    columns = [c for c in read_frame(conn, f"SELECT * FROM {table} WHERE 1 = 0").columns  # noqa: S608
                               if c != SEQUENCED[table]]
                out[table] = _hash_of(self.engine, f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608
            else:
                out[table] = table_hash(self.engine, table)
        out["etl_runs"] = _hash_of(self.engine, f"SELECT {', '.join(RUN_COLUMNS)} FROM etl_runs")  # noqa: S608
        return out

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def _hash_of(engine, sql: str) -> str:
    """table_hash's order-independent hash, of a query (the same recipe: str, sorted, CSV)."""
    import hashlib

    with engine.connect() as conn:
        frame = read_frame(conn, sql)
    frame = frame.astype(str).sort_values(list(frame.columns), ignore_index=True)
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with start_background(load_world(DEMO_WORLD)) as handle:
        yield handle


@pytest.fixture(scope="module")
def clean(sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The reference: the same run against a simulator without faults (computed once);
    its hashes are in `.reference`."""
    sim.reset()
    reference = Warehouse(tmp_path_factory.mktemp("clean"), sim)
    outcome, _ = reference.run()
    assert outcome.failed_dealers == [] and outcome.load["status"] == "applied"
    reference.reference = reference.hashes()
    yield reference
    reference.engine.dispose()


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> Iterator[dict[str, dict[str, Any]]]:
    """Each row's result; printed as one table when the module ends (shown with or without -s)."""
    found: dict[str, dict[str, Any]] = {}
    yield found
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reliability.record(
        "fault matrix", faults_injected=len(found),
        faults_survived=sum(r["outcome"] in ("retried", "quarantined") for r in found.values()),
        faults_failed_clearly=sum(r["outcome"] == "fails_dealer" and bool(r["error"]) for r in found.values()),
        rows_lost=sum(r["rows_lost"] for r in found.values() if isinstance(r["rows_lost"], int)),
    )
    if reporter is not None and found:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            for line in summary_table(found):
                reporter.write_line(line)


def summary_table(found: dict[str, dict[str, Any]]) -> list[str]:
    """The matrix as a Markdown table, then the totals line the suite's report quotes."""
    head = ["fault", "expected", "outcome", "typed error", f"{DEALER} calls", "rows lost", "equal after recovery"]
    body = [[r["fault"], r["expected"], r["outcome"], r["error"] or "-", str(r["calls"]), str(r["rows_lost"]),
             "yes" if r["equal"] else r.get("unequal", "NO")] for r in found.values()]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    lines = ["", "Fault matrix (tests/integration/test_fault_matrix.py)", fmt.format(*head),
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt.format(*row) for row in body]
    survived = sum(r["outcome"] == "retried" for r in found.values())
    failed = sum(r["outcome"] == "fails_dealer" and bool(r["error"]) for r in found.values())
    kept = sum(r["outcome"] == "quarantined" for r in found.values())
    lines.append(f"faults injected {len(found)} / survived by retry {survived} / failed clearly with typed error "
                 f"{failed} / row quarantined {kept} / rows lost {sum(r['rows_lost'] for r in found.values())}"
                 f" / warehouse equal after recovery {sum(r['equal'] for r in found.values())} of {len(found)}")
    return lines


# --------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_fault_on_one_dealer(row: Row, sim: SimulatorHandle, clean: Warehouse, results, tmp_path):
    sim.reset()
    sim.add_fault(row.kind, dealer=DEALER, date=T.date().isoformat(), times=row.times, **row.options)
    wh = Warehouse(tmp_path, sim)
    record: dict[str, Any] = {"fault": row.id, "expected": row.expect + (f" {row.error.__name__}" if row.error else ""),
                              "outcome": "?", "error": "", "calls": 0, "rows_lost": "?", "equal": False}
    results[row.id] = record
    try:
        outcome, client = wh.run()
        calls = sim.requests(dealer_id=DEALER, operation="VehicleInventory")
        record["calls"] = len(calls)
        faulted = [c for c in calls if str(c["outcome"]).startswith("fault:") or c["outcome"] == "throttled"]
        assert faulted, f"the {row.kind} fault never fired: {calls}"
        assert len(calls) == row.calls, [c["outcome"] for c in calls]

        if row.expect == "fails_dealer":
            record["outcome"] = "fails_dealer" if outcome.failed_dealers else "loaded"
            assert outcome.failed_dealers == [DEALER]
            assert [type(e) for e in client.errors] == [row.error], client.errors
            error = client.errors[0]
            record["error"] = type(error).__name__
            assert error.dealer_id == DEALER and error.attempts == row.calls
            status = wh.status(DEALER)
            assert status["status"] == "failed" and status["fix"] == error.fix
            assert DEALER in status["error"] and "Fix:" in status["error"]
            assert outcome.load["status"] == "applied"
            assert wh.rows("SELECT status FROM etl_runs") == [("partial",)]
            assert wh.rows("SELECT DISTINCT dealer_id FROM feed_vehicles ORDER BY dealer_id") == [
                ("ZE_ZE7",), ("ZE_ZE9",)]

            with RecordingClient(sim.url, "dealer-feed-vendor", "demo-secret", **CLIENT) as other_day:
                # the rule is per-date: the same dealer's next feed date is answered meanwhile
                assert other_day.vehicle_inventory(wh.group.dealer(DEALER), DAYS[1]).num_rows > 0

            sim.clear_faults()  # the cause is fixed; on-call runs the dealer again for the same feed time
            again, _ = wh.run(dealers=(DEALER,))
            assert again.failed_dealers == [] and again.load.get("late_dealers") == [DEALER], again.load
        else:
            record["outcome"] = row.expect if not outcome.failed_dealers else "fails_dealer"
            assert outcome.failed_dealers == [] and client.errors == []
            assert outcome.load["status"] == "applied"
            assert wh.rows("SELECT status FROM etl_runs") == [("success",)]
            sim.clear_faults()
            again, _ = wh.run(dealers=(DEALER,))  # clearing the task again changes nothing
            assert again.load["status"] == "already_applied"

        got, want = wh.hashes(), clean.reference
        record["rows_lost"] = _rows_lost(wh, served(sim))
        assert record["rows_lost"] == 0
        if row.expect == "quarantined":
            vins = "SELECT vin FROM feed_vehicles WHERE dealer_id = :d"
            missing = set(clean.rows(vins, d=DEALER)) - set(wh.rows(vins, d=DEALER))
            assert len(missing) == 1 and set(wh.rows(vins, d=DEALER)) < set(clean.rows(vins, d=DEALER))
            quarantined = wh.rows("SELECT rules, row_json FROM quarantine WHERE dealer_id = :d", d=DEALER)
            extra = [q for q in quarantined if q not in clean.rows(
                "SELECT rules, row_json FROM quarantine WHERE dealer_id = :d", d=DEALER)]
            assert len(extra) == 1 and extra[0][0] == "forbidden_character", extra
            assert next(iter(missing))[0] in extra[0][1] and "\ufffd" in extra[0][1]
            record["unequal"] = "no: its 1 vehicle stays quarantined (raw file kept)"
        else:
            assert got == want, sorted(t for t in got if got[t] != want[t])
            record["equal"] = True
    finally:
        sim.reset()
        wh.engine.dispose()


def served(sim: SimulatorHandle) -> dict[str, int]:
    """Vehicle rows served per dealer of the group on the run date (the world's own answer)."""
    return {d: len(sim.world.vehicles(d, T.date())) for d in find_group("demo").dealer_ids}


def _rows_lost(wh: Warehouse, served: dict[str, int]) -> int:
    """Vehicle rows served for the run date that are in neither feed_vehicles nor quarantine."""
    landed = dict(wh.rows(
        "SELECT dealer_id, COUNT(*) FROM (SELECT dealer_id FROM feed_vehicles UNION ALL "
        "SELECT dealer_id FROM quarantine WHERE dataset = 'vehicles') landed GROUP BY dealer_id"))
    return sum(max(0, n - landed.get(d, 0)) for d, n in served.items())

