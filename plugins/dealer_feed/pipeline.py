"""The steps of one dealer-group run, as plain functions of (group, dealers, T, paths).

The DAG, the CLI and the tests all call these; none of them needs Airflow. Heavy
libraries (pandas, pyarrow, GX, SQLAlchemy) are imported inside the functions so that
importing this module from a DAG file costs nothing at parse time.

Rerun safety, step by step:
- extract: a dealer's raw.parquet for a run is immutable; if it exists it is reused, so a
  rerun never re-fetches a different inventory for the same logical time.
- validate: pure function of the raw file; rewriting gives the same files.
- transform: skipped when the run is already applied (its inputs have moved on).
- load: one transaction; an applied run is a no-op ("already applied").
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealer_feed.config import DATASETS, Dealer, GroupConfig
from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import as_utc, run_id
from dealer_feed.landing import (
    LandingFileError,
    LandingPath,
    dealer_run_dir,
    delete,
    exists,
    group_run_dir,
    landing_root,
    parquet_rows,
    read_json,
    read_parquet,
    url_of,
    write_json,
    write_parquet,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy.engine import Engine

    from dealer_feed.opentrack.client import OpenTrackClient

log = logging.getLogger(__name__)

STEP_DONE = "[dealer-feed] step done:"
"""The head of the one line each task step logs when it ends (step_done): what on-call greps
for, and what bench/bench_large_run.py reads from the task logs (its peak RSS per task process)."""


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (getrusage ru_maxrss: KiB on Linux). In a
    forked task process it counts from the fork: the resident pages it shares with its parent
    at the fork are in it, as in any RSS figure."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_done(step: str, started: float, **counts: Any) -> None:
    """`[dealer-feed] step done: load run=large:... rows=... in 12.34s, peak RSS 512 MB`: the
    step's counts, its seconds since `started` (perf_counter) and the process's peak RSS."""
    figures = " ".join(f"{name}={value}" for name, value in counts.items())
    log.info("%s %s %s in %.2fs, peak RSS %.0f MB", STEP_DONE, step, figures, time.perf_counter() - started,
             peak_rss_mb())


class DealerStepError(DealerFeedError):
    """One or more dealers of a batch failed; the others were written. Names each fix.

    `transient` is true when at least one failure may go away on retry (service down),
    so Airflow retries the batch; otherwise (missing grant, bad batch) it fails at once.
    `dealers` and `fix` (the first failed dealer's fix line) are what the failure alert
    shows (alerts.dealers_of reads them).
    """

    def __init__(self, message: str, transient: bool = False, dealers: Sequence[str] = (), fix: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.dealers = list(dealers)
        self.fix = fix


@dataclass(frozen=True)
class RunContext:
    """What every step of one run needs to know. The feed time is normalised to aware UTC
    here, where it enters the steps (contract.identity.as_utc), and trusted everywhere after.
    `landing` is the landing root: a local directory (the default) or an object-storage path
    the Airflow edge builds from DEALER_FEED_LANDING_URL (airflow_edge.hooks.landing_root);
    the steps touch it only through dealer_feed.landing's functions."""

    group: GroupConfig
    logical_time: datetime
    landing: LandingPath = field(default_factory=landing_root)
    force_guards: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "logical_time", as_utc(self.logical_time))

    @property
    def T(self) -> datetime:  # noqa: N802 - the spec's name for the feed time
        return self.logical_time

    @property
    def run_id(self) -> str:
        return run_id(self.group.group, self.T)

    def dealer_dir(self, dataset: str, dealer_id: str) -> LandingPath:
        return dealer_run_dir(self.landing, self.group.group, dataset, dealer_id, self.T)

    @property
    def run_dir(self) -> LandingPath:
        return group_run_dir(self.landing, self.group.group, self.T)


# --------------------------------------------------------------------------- task entry points
# What a DAG task and `dealer-feed run` both call, given the engine and client the Airflow edge
# builds from the group's connections (airflow_edge.hooks). Airflow-only concerns (the task
# context, secret masking, AirflowFailException) stay in airflow_edge.


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations; with none pending only reads the version (the loader role may run it)."""
    from dealer_feed.warehouse.migrations import apply

    started = time.perf_counter()
    applied = apply(engine)
    step_done("migrate", started, applied=len(applied))
    return applied


def dealers_in_run(batch: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The dealers of `batch` this run extracts: all, or those in the run's `dealers` parameter."""
    return [d for d in batch if d in wanted] if wanted else list(batch)


def extract_batch(
    ctx: RunContext, batch: Sequence[str], wanted: Sequence[str] | None, client: OpenTrackClient,
) -> list[dict[str, Any]]:
    """The `extract` step of one dealer batch (a mapped task): the dealers the run wants, fetched
    into raw files (extract). It needs no warehouse, pandas or GX: validation is its own step,
    so an extract task process holds the HTTP client, the parser and Arrow only."""
    dealer_ids = dealers_in_run(batch, wanted)
    if not dealer_ids:
        log.info("no dealer of this batch is in the run's `dealers` parameter; nothing to extract")
        return []
    with _dealer_step("extract", ctx, dealer_ids) as figures:
        statuses = extract(ctx, dealer_ids, client)
        figures.update(dealers=len(dealer_ids), rows=sum(s["rows"] for s in statuses),
                       arrow_allocator=_arrow_allocator())
    return statuses


def _arrow_allocator() -> str:
    """The allocator behind Arrow's memory pool (system, mimalloc, jemalloc): part of an extract
    task's memory figure, so its step line says which (airflow_edge.dag_factory sets it)."""
    import pyarrow as pa

    return pa.default_memory_pool().backend_name


def validate(ctx: RunContext, wanted: Sequence[str] | None, engine: Engine) -> list[dict[str, Any]]:
    """The `validate` step of a run (one task, after every extract batch): the wanted dealers whose
    raw files the run has, with their previous good-row counts (empty-feed guard), validated
    together (validate_landed), so GX is imported and its context built once per run."""
    from dealer_feed.warehouse import reads

    dealer_ids = dealers_in_run(ctx.group.dealer_ids, wanted)
    with _dealer_step("validate", ctx, dealer_ids) as figures:
        previous = reads.previous_good_rows(engine, ctx.group.group, dealer_ids, before=ctx.T)
        statuses = validate_landed(ctx, dealer_ids, previous)
        figures.update(dealers=len({s["dealer_id"] for s in statuses}), rows=sum(s["rows"] for s in statuses),
                       good=sum(s["good"] for s in statuses), quarantined=sum(s["quarantined"] for s in statuses))
    return statuses


@contextmanager
def _dealer_step(step: str, ctx: RunContext, dealer_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Times a step over dealers and logs its step-done line: with the figures the block fills in
    when it succeeds; with the count of failed dealers when it raises DealerStepError (the other
    dealers' files were written, so the step's time and memory still tell something)."""
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    try:
        yield figures
    except DealerStepError as exc:
        step_done(step, started, run=ctx.run_id, dealers=len(dealer_ids), failed=len(exc.dealers))
        raise
    step_done(step, started, run=ctx.run_id, **figures)


# --------------------------------------------------------------------------- extract


LINES_FILE = "lines.parquet"
"""Repair order lines (Details/OpenRepairOrderDetail), landed next to the orders' raw.parquet
as delivered (strings; not validated or loaded yet: docs/OPENTRACK.md)."""


def _raw_path(ctx: RunContext, dataset: str, dealer_id: str) -> LandingPath:
    return ctx.dealer_dir(dataset, dealer_id) / "raw.parquet"


def _extract_dataset(ctx: RunContext, client: OpenTrackClient, dealer_id: str, dataset: str) -> int:
    """Fetch one dataset of one dealer into raw.parquet, unless the run already has it; its row count."""
    import pyarrow as pa

    from dealer_feed.opentrack.client import unknown_fields, with_unknown_fields

    raw_path = _raw_path(ctx, dataset, dealer_id)
    if exists(raw_path):
        log.info("%s %s: raw file for this run exists, reusing %s", dealer_id, dataset, url_of(raw_path))
        return parquet_rows(raw_path)
    dealer = ctx.group.dealer(dealer_id)
    started = time.perf_counter()
    if dataset == "vehicles":
        table = client.vehicle_inventory(dealer, ctx.T)
    elif dataset == "parts":
        tables = [client.parts_inventory(dealer, make, ctx.T) for make in dealer.make_codes]
        table = with_unknown_fields(pa.concat_tables(tables), unknown_fields(*tables))
    else:
        table, lines = client.open_repair_orders_with_lines(dealer, ctx.T)
        write_parquet(lines, raw_path.with_name(LINES_FILE))
    write_parquet(table, raw_path)
    seconds = time.perf_counter() - started
    log.info(
        "%s %s: extracted %d rows in %.2fs (%.0f rows/s) -> %s",
        dealer_id, dataset, table.num_rows, seconds, table.num_rows / max(seconds, 1e-9), url_of(raw_path),
    )
    return table.num_rows


def _status(ctx: RunContext, dataset: str, dealer_id: str, status: str, **extra: Any) -> dict[str, Any]:
    record = {"dealer_id": dealer_id, "dataset": dataset, "status": status, "rows": 0, "good": 0,
              "quarantined": 0, "error": None, "fix": None, "run_id": ctx.run_id} | extra
    write_json(record, ctx.dealer_dir(dataset, dealer_id) / "status.json")
    return record


EMPTY_FIRST_FEED_FIX = ("check `dealer-feed check GROUP` (grant, company number, server name) and the extract log; "
                        "if the dealer really has no vehicles, nothing to do")
EMPTY_FIRST_FEED = ("empty first feed: OpenTrack returned 0 vehicles for a dealer with no earlier run. "
                    f"Fix: {EMPTY_FIRST_FEED_FIX}")


def _drift_notes(ctx: RunContext, dataset: str, dealer_id: str, rows: int,
                 previous_good_rows: dict[str, int | None], unknown: dict[str, int]) -> dict[str, Any]:
    """Status fields that make a silent feed visible: `warning` for a first vehicle feed of 0 rows
    (the empty-feed guard only knows dealers with an earlier run) and `unknown_fields`, the
    delivered record fields the client does not map (drift), by name."""
    notes: dict[str, Any] = {"unknown_fields": unknown}
    if unknown:
        log.info("%s %s: %d unmapped OpenTrack field(s) delivered: %s", dealer_id, dataset, len(unknown),
                 ", ".join(f"{name} ({count})" for name, count in sorted(unknown.items())))
    if dataset == "vehicles" and rows == 0 and previous_good_rows.get(dealer_id) is None:
        log.warning("[dealer-feed] WARNING group=%s run=%s dealer=%s: %s", ctx.group.group, ctx.run_id, dealer_id,
                    EMPTY_FIRST_FEED)
        notes["warning"] = EMPTY_FIRST_FEED
    return notes


def extract(ctx: RunContext, dealer_ids: list[str], client: OpenTrackClient) -> list[dict[str, Any]]:
    """Fetch every dataset of `dealer_ids` into the run's raw files; one status per dealer/dataset.

    The dealers are fetched concurrently (client.fetch_many: at most the client's
    max_concurrency at once, one rate limiter for all); a dealer whose raw files the run already
    has is not fetched again (raw files are immutable). A dealer whose fetch fails gets a
    `failed` status with the error's fix line and does not stop the others; an optional dataset
    without its grant is `skipped`; the others are `extracted`, for `validate` to take up.
    After the whole batch, DealerStepError names every failed dealer (the task shows red).
    """
    from dealer_feed.opentrack.errors import AccessNotGrantedError, OpenTrackError

    def fetch(dealer: Dealer) -> dict[str, Any]:
        """Every dataset of one dealer: its raw row count, or the OpenTrackError its fetch ended with."""
        fetched: dict[str, Any] = {}
        for dataset in dealer.datasets:
            try:
                fetched[dataset] = _extract_dataset(ctx, client, dealer.dealer_id, dataset)
            except OpenTrackError as exc:
                fetched[dataset] = exc
        return fetched

    done = itertools.count(1)

    def progress(_dealer_id: str) -> None:
        log.info("extract progress: %d/%d dealers", next(done), len(dealer_ids))

    extracted = client.fetch_many(list(map(ctx.group.dealer, dealer_ids)), fetch, on_done=progress)
    statuses: list[dict[str, Any]] = []
    for dealer_id in dealer_ids:
        for dataset, outcome in extracted[dealer_id].items():
            if isinstance(outcome, AccessNotGrantedError):
                if dataset == "vehicles":
                    statuses.append(_status(ctx, dataset, dealer_id, "failed", error=str(outcome), fix=outcome.fix))
                else:
                    log.warning("%s: optional dataset %s skipped: %s", dealer_id, dataset, outcome)
                    statuses.append(_status(ctx, dataset, dealer_id, "skipped", error=str(outcome), fix=outcome.fix))
            elif isinstance(outcome, OpenTrackError):
                log.error("%s %s: %s", dealer_id, dataset, outcome)
                statuses.append(_status(ctx, dataset, dealer_id, "failed", error=str(outcome),
                                        fix=outcome.fix, transient=outcome.transient))
            else:
                statuses.append(_status(ctx, dataset, dealer_id, "extracted", rows=outcome))
    failed = [s for s in statuses if s["status"] == "failed"]
    if failed:
        raise _batch_failure(failed, dealer_ids, "batch", "extracted")
    return statuses


def validate_landed(
    ctx: RunContext, dealer_ids: Sequence[str], previous_good_rows: dict[str, int | None],
) -> list[dict[str, Any]]:
    """Validate every dataset of `dealer_ids` whose raw file the run has; one status per dealer/dataset.

    Validation is a pure function of the raw file, so this rewrites the same good, quarantine,
    report and status files on every call. A dealer that fails a guard (bad batch, empty
    feed) gets a `failed` status with the fix line and does not stop the others; after all,
    DealerStepError names every failed dealer. A dealer without a raw file (its extract
    failed, or it is not in the run) is left as it is.
    """
    from dealer_feed.opentrack.client import unknown_fields
    from dealer_feed.validation import BatchGuardError, check_batch_guards, summary_text, validate_batches, write_report

    raws: dict[str, dict[str, Any]] = {}
    statuses: list[dict[str, Any]] = []
    for dealer_id in dealer_ids:
        for dataset in ctx.group.dealer(dealer_id).datasets:
            path = _raw_path(ctx, dataset, dealer_id)
            if not exists(path):
                continue
            try:
                raws.setdefault(dataset, {})[dealer_id] = read_parquet(path)
            except LandingFileError as exc:  # a damaged raw file fails its dealer, not the run
                log.error("%s", exc)
                statuses.append(_status(ctx, dataset, dealer_id, "failed", error=str(exc), fix=exc.fix))
    if not raws and not statuses:
        log.info("run %s: no raw file of these dealers to validate", ctx.run_id)

    for dataset, by_dealer in raws.items():
        results = validate_batches(dataset, by_dealer, group=ctx.group, logical_time=ctx.T)
        for dealer_id, result in results.items():
            directory = ctx.dealer_dir(dataset, dealer_id)
            report = write_report(result, directory / "report.html")
            log.info("%s\nreport: %s", summary_text(result), url_of(report))
            write_parquet(result.quarantine_table(), directory / "quarantine.parquet")
            counts = {"rows": result.rows, "good": result.good_rows, "quarantined": result.quarantined}
            try:
                check_batch_guards(
                    result,
                    max_bad_fraction=ctx.group.thresholds.max_bad_fraction,
                    previous_good_rows=previous_good_rows.get(dealer_id) if dataset == "vehicles" else None,
                    force=ctx.force_guards,
                    report_path=url_of(report),
                )
            except BatchGuardError as exc:
                log.error("%s", exc)
                delete(directory / "good.parquet")
                statuses.append(_status(ctx, dataset, dealer_id, "failed", error=str(exc), fix=exc.fix, **counts))
                continue
            write_parquet(result.good, directory / "good.parquet")
            statuses.append(_status(ctx, dataset, dealer_id, "ok", **counts, **_drift_notes(
                ctx, dataset, dealer_id, result.rows, previous_good_rows, unknown_fields(by_dealer[dealer_id]))))

    failed = [s for s in statuses if s["status"] == "failed"]
    if failed:
        raise _batch_failure(failed, sorted({s["dealer_id"] for s in statuses}), "run", "validated")
    return statuses


def _batch_failure(failed: list[dict[str, Any]], dealer_ids: list[str], scope: str, done: str) -> DealerStepError:
    """The step's error: failed dealers counted once each (a status is per dealer and dataset),
    the failed datasets listed, one line per failed status. `scope`: "batch" (extract) or "run"
    (validate); `done`: what happened to the others."""
    dealers = list(dict.fromkeys(s["dealer_id"] for s in failed))
    datasets = ", ".join(dict.fromkeys(s["dataset"] for s in failed))
    without_vehicles = [s["dealer_id"] for s in failed if s["dataset"] == "vehicles"]
    others = f"; the others were {done}" if len(dealers) < len(dealer_ids) else ""
    untouched = (f" The service requests of {', '.join(without_vehicles)} are left untouched this run."
                 if without_vehicles else "")
    lines = "\n".join(f"- {s['dealer_id']} {s['dataset']}: {s['error']}" for s in failed)
    return DealerStepError(
        f"{len(dealers)} of {len(dealer_ids)} dealer(s) in this {scope} failed ({datasets}){others}."
        f"{untouched}\n{lines}",
        transient=any(s.get("transient") for s in failed),
        dealers=dealers,
        fix=next(filter(None, (s.get("fix") for s in failed)), ""),
    )


# --------------------------------------------------------------------------- transform


def dealer_statuses(ctx: RunContext, dataset: str = "vehicles", dealer_ids: Sequence[str] | None = None
                    ) -> list[dict[str, Any]]:
    """Every status.json written for this run (a dealer with none was not extracted), of the
    group's dealers or only of `dealer_ids`."""
    found = []
    for dealer_id in ctx.group.dealer_ids if dealer_ids is None else dealer_ids:
        path = ctx.dealer_dir(dataset, dealer_id) / "status.json"
        if exists(path):
            found.append(read_json(path))
    return found


def _read_good(ctx: RunContext, dataset: str, dealer_ids: list[str]) -> pa.Table | None:
    import pyarrow as pa

    tables = [read_parquet(ctx.dealer_dir(dataset, d) / "good.parquet") for d in dealer_ids]
    return pa.concat_tables(tables) if tables else None


def _read_quarantine(ctx: RunContext) -> pa.Table:
    """Every quarantine file of the run, as one Arrow table (QUARANTINE_SCHEMA)."""
    import pyarrow as pa

    from dealer_feed.contract.schemas import QUARANTINE_SCHEMA

    tables = [QUARANTINE_SCHEMA.empty_table()]
    for dataset in DATASETS:
        for dealer_id in ctx.group.dealer_ids:
            path = ctx.dealer_dir(dataset, dealer_id) / "quarantine.parquet"
            if exists(path):
                tables.append(read_parquet(path).cast(QUARANTINE_SCHEMA))
    return pa.concat_tables(tables)


def _quarantined_vins(ctx: RunContext, quarantine: pa.Table, dealer_ids: list[str]) -> pd.Series:
    """The VINs, as delivered, of the quarantined vehicle rows of `dealer_ids` (the extracted
    dealers): the rules engine counts the well-formed ones as present (SPEC: quarantine never
    causes a close). Taken from raw.parquet at the row numbers of the run's quarantine table
    (already read for the load, so each quarantine file is read once)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = quarantine.filter(pc.and_(pc.equal(quarantine.column("dataset"), "vehicles"),
                                     pc.is_in(quarantine.column("dealer_id"), value_set=pa.array(dealer_ids, pa.string()))))
    vins = []
    for dealer_id in sorted(set(rows.column("dealer_id").to_pylist())):
        numbers = rows.filter(pc.equal(rows.column("dealer_id"), dealer_id)).column("row_number")
        raw_vins = read_parquet(ctx.dealer_dir("vehicles", dealer_id) / "raw.parquet", columns=["vin"]).column("vin")
        vins.append(raw_vins.take(numbers).cast(pa.string()))
    return pd.Series(pa.chunked_array(vins, pa.string()) if vins else [], dtype="str")


def _late_part(
    frames: dict[str, Any], counts: dict[str, Any], dealers: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows of a whole-run computation that belong to late `dealers` (their vehicles,
    events, statuses, files; SRs of those dealers or named by their vehicles) and their counts.
    Frames are the rules engine's pandas frames or Arrow tables (landing files)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def of(frame: Any) -> Any:
        if isinstance(frame, pa.Table):
            if "dealer_id" not in frame.column_names:
                return frame
            return frame.filter(pc.is_in(frame.column("dealer_id"), value_set=pa.array(list(dealers), pa.string())))
        return frame[frame["dealer_id"].isin(dealers)].reset_index(drop=True) if "dealer_id" in frame else frame

    part = {name: of(frame) for name, frame in frames.items()}
    srs = frames["service_requests"]
    part["service_requests"] = srs[
        srs["dealer_id"].isin(dealers) | srs["sr_id"].isin(part["feed_vehicles"]["sr_id"].dropna())
    ].reset_index(drop=True)
    by_dealer = {d: c for d, c in counts.get("by_dealer", {}).items() if d in dealers}
    totals = {k: sum(int(c.get(k, 0)) for c in by_dealer.values()) for k in counts.get("totals", {})}
    return part, {**counts, "by_dealer": by_dealer, "totals": totals}


def compute_run_changes(
    ctx: RunContext, engine: Engine, late_dealers: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the rules on the run's validated feeds against the warehouse as it is now.

    Returns the change frames and the run summary. The summary's `based_on` is the
    group's warehouse state (warehouse.load.group_state) read *before* the service
    requests: a load committing in between makes the token stale (the load then
    recomputes), never the changes. `change_files` lists every frame the load must find.
    With `late_dealers`, only the part of those dealers (fixed after the run applied) is
    returned, computed against the warehouse that already holds the run's other dealers.
    The rules engine's frames (service requests, events, outcomes) are pandas; the
    landing files (quarantine, statuses, parts, repair orders) stay Arrow tables.
    """
    from dealer_feed.contract.schemas import DEALER_STATUS_SCHEMA, ENGINE_FEED_SCHEMA, FEED_RENAMES, as_table
    from dealer_feed.rules.engine import compute_changes
    from dealer_feed.rules.guards import check_mass_close
    from dealer_feed.warehouse import reads

    based_on = reads.current_state(engine, ctx.group.group)
    by_dataset = {dataset: dealer_statuses(ctx, dataset) for dataset in DATASETS}
    statuses = by_dataset["vehicles"]
    extracted = sorted(s["dealer_id"] for s in statuses if s["status"] == "ok")
    if not extracted:
        raise DealerStepError(
            f"group {ctx.group.group} run {ctx.run_id}: no dealer's vehicles were extracted and validated; "
            "nothing to transform. Fix the extract / validate failures above and clear that task with downstream."
        )
    good = _read_good(ctx, "vehicles", extracted).to_pandas()
    feed = good.rename(columns={"type_nu": FEED_RENAMES["type_nu"]})[ENGINE_FEED_SCHEMA.names]
    srs = reads.read_relevant_srs(engine, ctx.group.group, ctx.T, ctx.group.settings.max_ignore_days)
    log.info("transform: %d feed vehicles from %d dealers, %d current service requests", len(feed), len(extracted), len(srs))

    quarantine = _read_quarantine(ctx)
    started = time.perf_counter()
    changes = compute_changes(
        feed, srs, extracted_dealers=extracted, settings=ctx.group.settings, group=ctx.group.group, logical_time=ctx.T,
        quarantined_vins=_quarantined_vins(ctx, quarantine, extracted),
    )
    check_mass_close(changes, srs, ctx.group.thresholds.max_close_fraction, force=ctx.force_guards)
    log.info("rules engine: %.2fs for %d vehicles", time.perf_counter() - started, len(feed))

    feed_vehicles = good.merge(changes.outcomes, on=["dealer_id", "vin"], how="left", validate="one_to_one")
    frames = {
        "service_requests": changes.service_requests,
        "events": changes.events,
        "feed_vehicles": feed_vehicles,
        "quarantine": quarantine,
        "dealer_statuses": as_table([s for found in by_dataset.values() for s in found], DEALER_STATUS_SCHEMA),
    }
    for name in ("parts", "repair_orders"):
        ok = sorted(s["dealer_id"] for s in by_dataset[name] if s["status"] == "ok")
        if ok:
            frames[name] = _read_good(ctx, name, ok)
    counts = changes.counts
    if late_dealers:
        frames, counts = _late_part(frames, counts, late_dealers)
    failed = sorted(s["dealer_id"] for s in statuses if s["status"] != "ok")
    not_extracted = sorted(set(ctx.group.dealer_ids) - {s["dealer_id"] for s in statuses})
    summary = {
        "group": ctx.group.group,
        "run_id": ctx.run_id,
        "logical_time": ctx.T.isoformat(),
        "based_on": based_on,
        "change_files": sorted(f"{name}.parquet" for name in frames),
        "dealers_extracted": len(extracted),
        "dealers_failed": failed,
        "dealers_not_extracted": not_extracted,
        "vehicles_seen": int(len(feed)),
        "quarantined": frames["quarantine"].num_rows,
        "counts": counts,
        "status": "success" if not failed and not not_extracted else "partial",
        "empty_first_feeds": sorted(s["dealer_id"] for s in statuses if s.get("warning") == EMPTY_FIRST_FEED),
        "unknown_fields": {f"{s['dealer_id']} {s['dataset']}": s["unknown_fields"]
                           for found in by_dataset.values() for s in found if s.get("unknown_fields")},
    }
    return frames, summary


def _write_changes(ctx: RunContext, frames: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The change files, then summary.json (last: a summary always lists files that exist)."""
    from dealer_feed.contract.schemas import as_table

    for name, frame in frames.items():
        write_parquet(as_table(frame), ctx.run_dir / "changes" / f"{name}.parquet")
    write_json(summary, ctx.run_dir / "summary.json")
    return summary


def transform(ctx: RunContext, engine: Engine) -> dict[str, Any]:
    """Compute the run's service-request changes from the validated feeds and the warehouse.

    Writes the change frames under the run directory and returns the summary (which
    records the warehouse state the changes are based on). Runs only when the run is not
    yet applied: after the load, the warehouse already holds this run's changes, so
    recomputing would describe a different (empty) change. Dealers fixed after the run
    applied are added by the load (`load` -> late dealers).
    """
    from dealer_feed.warehouse import reads

    summary_path = ctx.run_dir / "summary.json"
    if reads.run_is_applied(engine, ctx.group.group, ctx.T) and exists(summary_path):
        log.info("run %s is already applied; keeping its change files", ctx.run_id)
        return read_json(summary_path)
    started = time.perf_counter()
    summary = _write_changes(ctx, *compute_run_changes(ctx, engine))
    step_done("transform", started, run=ctx.run_id, vehicles=summary["vehicles_seen"],
              dealers=summary["dealers_extracted"])
    return summary


# --------------------------------------------------------------------------- load

LEGACY_CHANGE_FILES = ("dealer_statuses.parquet", "events.parquet", "feed_vehicles.parquet", "quarantine.parquet",
                       "service_requests.parquet")
"""What a summary.json written before `change_files` existed implies (the files every run has)."""
STALE_ATTEMPTS = 3
"""Loads that find the warehouse moved under them (StaleChangesError) recompute this often, then fail."""


def _read_changes(ctx: RunContext, summary: dict[str, Any]) -> dict[str, pa.Table]:
    """Every change file the transform's summary lists, as Arrow tables (a missing or corrupt one
    is a LandingFileError whose fix clears the transform), by frame name."""
    names = summary.get("change_files") or LEGACY_CHANGE_FILES
    changes_dir = ctx.run_dir / "changes"
    return {Path(name).stem: read_parquet(changes_dir / name) for name in names}


def _run_to_load(ctx: RunContext, frames: dict[str, Any], summary: dict[str, Any],
                 airflow_run_id: str | None, late_dealers: Sequence[str] = ()) -> Any:
    from dealer_feed.warehouse.load import RunToLoad

    return RunToLoad(
        group=ctx.group.group,
        logical_time=ctx.T,
        airflow_run_id=airflow_run_id,
        service_requests=frames["service_requests"],
        events=frames["events"],
        feed_vehicles=frames["feed_vehicles"],
        quarantine=frames["quarantine"],
        dealer_statuses=frames["dealer_statuses"],
        parts=frames.get("parts"),
        repair_orders=frames.get("repair_orders"),
        counts=summary["counts"],
        status=summary["status"],
        based_on=summary.get("based_on"),
        late_dealers=tuple(late_dealers),
    )


def load(ctx: RunContext, engine: Engine, airflow_run_id: str | None = None) -> dict[str, Any]:
    """Apply the run's changes to the warehouse in one transaction (idempotent).

    Changes computed against another warehouse state than the current one (a run that
    transformed while an earlier run's load was failed) are recomputed first, with the
    transform's own function; the transaction re-checks the state under the group lock.
    An applied run adds the dealers fixed since (late dealers) while it is the group's
    last run, or records that a later run caught up with them.
    """
    from dealer_feed.warehouse.errors import StaleChangesError

    started = time.perf_counter()
    for attempt in range(1, STALE_ATTEMPTS + 1):
        try:
            result = _load_once(ctx, engine, airflow_run_id)
            step_done("load", started, run=ctx.run_id, status=result["status"],
                      rows=sum(result.get("rows", {}).values()))
            return result
        except StaleChangesError as exc:
            if attempt == STALE_ATTEMPTS:
                raise
            log.warning("%s Recomputing (attempt %d of %d).", exc, attempt + 1, STALE_ATTEMPTS)
    raise AssertionError("unreachable")


def _load_once(ctx: RunContext, engine: Engine, airflow_run_id: str | None) -> dict[str, Any]:
    from dealer_feed.warehouse import reads
    from dealer_feed.warehouse.load import apply_run

    if reads.run_is_applied(engine, ctx.group.group, ctx.T):
        return _load_late_dealers(ctx, engine, airflow_run_id)
    summary = read_json(ctx.run_dir / "summary.json")
    last = reads.last_applied_run(engine, ctx.group.group)
    if last is None or last.logical_time < ctx.T:  # else apply_run refuses it (RunOrderError)
        now = reads.current_state(engine, ctx.group.group)
        if summary.get("based_on") != now:
            log.warning(
                "run %s: its changes were computed against warehouse state %s, but the warehouse is now at %s "
                "(a run applied after the transform); recomputing them against the current warehouse",
                ctx.run_id, summary.get("based_on"), now,
            )
            summary = _write_changes(ctx, *compute_run_changes(ctx, engine))
    result = apply_run(engine, _run_to_load(ctx, _read_changes(ctx, summary), summary, airflow_run_id))
    log.info("load %s: %s", ctx.run_id, result)
    return {"run_id": ctx.run_id, "status": result.status, "rows": result.rows}


def _load_late_dealers(ctx: RunContext, engine: Engine, airflow_run_id: str | None) -> dict[str, Any]:
    """An applied run's load, rerun: add the dealers whose extract failed in it and is ok now."""
    from dealer_feed.warehouse import reads
    from dealer_feed.warehouse.load import apply_run, mark_caught_up

    pending = reads.failed_dealers(engine, ctx.run_id)
    fixed = sorted(s["dealer_id"] for s in dealer_statuses(ctx) if s["status"] == "ok" and s["dealer_id"] in pending)
    if not fixed:
        log.info("run %s is already applied; nothing to do%s", ctx.run_id,
                 f" (dealer(s) {', '.join(pending)} still failed in this run)" if pending else "")
        return {"run_id": ctx.run_id, "status": "already_applied", "rows": {}}
    last = reads.last_applied_run(engine, ctx.group.group)
    if last is not None and last.run_id != ctx.run_id:
        caught_up = mark_caught_up(engine, ctx.group.group, ctx.run_id, fixed)
        for dealer_id in fixed:
            if dealer_id in caught_up:
                log.warning(
                    "run %s: dealer %s is extracted now, but the later run %s has applied since with its full "
                    "inventory: the next run caught up, so nothing of this run is loaded for it "
                    "(etl_run_dealers.caught_up_by = %s)", ctx.run_id, dealer_id, caught_up[dealer_id],
                    caught_up[dealer_id],
                )
            else:
                log.warning(
                    "run %s: dealer %s is extracted now, but the later run %s has applied since (without this "
                    "dealer): an older run cannot load after it; the dealer's inventory is applied by the next "
                    "run that extracts it", ctx.run_id, dealer_id, last.run_id,
                )
        return {"run_id": ctx.run_id, "status": "caught_up_by_later_run", "rows": {}, "caught_up": caught_up}
    frames, summary = compute_run_changes(ctx, engine, late_dealers=fixed)
    result = apply_run(engine, _run_to_load(ctx, frames, summary, airflow_run_id, late_dealers=fixed))
    log.info("load %s: late dealer(s) %s added to the applied run: %s", ctx.run_id, ", ".join(fixed), result)
    return {"run_id": ctx.run_id, "status": result.status, "rows": result.rows, "late_dealers": fixed}


def reapply(ctx: RunContext, engine: Engine) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay's step for one run (`dealer-feed replay`): the rules on the run's validated landing
    files against the warehouse as it is now, applied in one transaction. The change files are
    not rewritten (a replay into another warehouse leaves the landing area as it was).
    Returns the summary and the load's result."""
    from dealer_feed.warehouse.load import apply_run

    frames, summary = compute_run_changes(ctx, engine)
    result = apply_run(engine, _run_to_load(ctx, frames, summary, airflow_run_id=None))
    log.info("replay %s: %s", ctx.run_id, result)
    return summary, {"run_id": ctx.run_id, "status": result.status, "rows": result.rows}
