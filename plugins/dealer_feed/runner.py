"""A group's run without Airflow (`dealer-feed run`) and its replay from the landing area
(`dealer-feed replay`).

Both drive the same pipeline functions the DAG's tasks call (pipeline.migrate,
extract_batch, validate, transform, load, compute_run_changes), so what they leave in the
warehouse is what the DAG leaves for the same feed times. They report each step through
`say` (one line per step, for people) and raise RunStepError (one line, no traceback)
when a step fails; errors that are not ours (bugs) keep their traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dealer_feed import pipeline
from dealer_feed.config import GroupConfig
from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import as_utc, describe_feed_time, feed_time_at_or_before, run_id
from dealer_feed.landing import LandingPath, exists, landed_run_times

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dealer_feed.opentrack.client import OpenTrackClient

log = logging.getLogger(__name__)

Say = Callable[[str], None]


class RunStepError(DealerFeedError):
    """A step of `dealer-feed run` / `replay` failed; the message is the one line to show."""

    transient = False

    def __init__(self, step: str, message: str, fix: str = "") -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.fix = fix


class ReplayRefusedError(RunStepError):
    """The target warehouse already holds runs of the group at or after the replay's start:
    replay never undoes applied runs."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _counts_text(summary: dict[str, Any]) -> str:
    totals = summary.get("counts", {}).get("totals", {})
    shown = ", ".join(f"{k} {v}" for k, v in sorted(totals.items()) if v)
    return f"{summary.get('vehicles_seen', 0)} vehicles, {summary.get('quarantined', 0)} quarantined" + (
        f"; {shown}" if shown else "")


def _load_text(result: dict[str, Any]) -> str:
    status = result.get("status")
    if status == "already_applied":
        return f"run {result['run_id']} already applied; nothing changed"
    rows = ", ".join(f"{t} {n}" for t, n in sorted(result.get("rows", {}).items()) if n)
    return f"run {result['run_id']} {str(status).replace('_', ' ')}" + (f" ({rows})" if rows else "")


@dataclass
class RunOutcome:
    """What `run_group` did: the load's result and the dealers whose extract/validate failed."""

    load: dict[str, Any]
    failed_dealers: list[str]
    failures: list[str]


def run_group(
    cfg: GroupConfig, at: datetime, engine: Engine, *, dealers: Sequence[str] = (), force_guards: bool = False,
    landing: LandingPath | None = None, client: OpenTrackClient | None = None, say: Say = print,
) -> RunOutcome:
    """migrate, extract of every dealer batch → validate → transform → load: the DAG's steps, one after another.

    Like the DAG, a failed dealer batch does not stop the others nor the load of the dealers
    that were extracted (the caller turns `failed_dealers` into a non-zero exit, as the DAG's
    watcher turns the run red); a failed migrate, transform or load stops the run.
    """
    at = as_utc(at)
    T = feed_time_at_or_before(cfg.schedule, at)  # the manual-run rule the DAG follows too
    ctx = pipeline.RunContext(group=cfg, logical_time=T, landing=landing if landing is not None else _landing_root(),
                              force_guards=force_guards)
    unknown = sorted(set(dealers) - set(cfg.dealer_ids))
    if unknown:
        raise RunStepError("run", f"dealer(s) {', '.join(unknown)} not in group {cfg.group} "
                                  f"(its dealers: {', '.join(cfg.dealer_ids)})")
    say(f"run {ctx.run_id}: {describe_feed_time(ctx.T, cfg.schedule, at)}")
    applied = _step("migrate", lambda: pipeline.migrate(engine))
    say(f"migrate: {len(applied)} migration(s) applied: {', '.join(applied)}" if applied
        else "migrate: up to date")

    failures: list[str] = []
    failed: list[str] = []

    def report(step: str, call: Callable[[], list[dict[str, Any]]], dealer_ids: Sequence[str]) -> None:
        """One step over dealers (a DealerStepError names the failed ones and lets the others go on), then
        one line per dealer and dataset."""
        try:
            statuses = call()
        except pipeline.DealerStepError as exc:
            failed.extend(exc.dealers)
            failures.append(_first_line(exc))
            statuses = [s for d in dealer_ids for s in _statuses_of(ctx, d)]
        for s in statuses:
            extra = f" ({s['error'].splitlines()[0]})" if s["status"] not in ("ok", "extracted") and s.get("error") else ""
            counts = (f", {s.get('good', 0)} good, {s.get('quarantined', 0)} quarantined" if step == "validate" else "")
            say(f"{step} {s['dealer_id']} {s['dataset']}: {s['status']}, {s.get('rows', 0)} rows{counts}{extra}")

    wanted = list(dealers) or None
    for batch in cfg.dealer_batches():
        in_batch = pipeline.dealers_in_run(batch, wanted)
        if not in_batch:
            continue
        if client is None:
            from dealer_feed.airflow_edge.hooks import opentrack_client

            client = _step("extract", lambda: opentrack_client(cfg.connections.opentrack))
        report("extract", lambda: pipeline.extract_batch(ctx, batch, wanted, client), in_batch)
    report("validate", lambda: pipeline.validate(ctx, wanted, engine), pipeline.dealers_in_run(cfg.dealer_ids, wanted))

    summary = _step("transform", lambda: pipeline.transform(ctx, engine))
    say(f"transform: {summary['dealers_extracted']} dealer(s) extracted, {_counts_text(summary)}")
    result = _step("load", lambda: pipeline.load(ctx, engine))
    say(f"load: {_load_text(result)}")
    return RunOutcome(load=result, failed_dealers=list(dict.fromkeys(failed)), failures=failures)


def _landing_root() -> LandingPath:
    """The landing root the DAG's tasks use (DEALER_FEED_LANDING_URL through the Airflow edge:
    a local directory, or object storage with its Airflow connection)."""
    from dealer_feed.airflow_edge.hooks import landing_root

    return _step("landing", landing_root)


def _statuses_of(ctx: pipeline.RunContext, dealer_id: str) -> list[dict[str, Any]]:
    return [s for dataset in ctx.group.dealer(dealer_id).datasets
            for s in pipeline.dealer_statuses(ctx, dataset, [dealer_id])]


def _step(step: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        if isinstance(exc, DealerFeedError):  # ours: one line with its fix; a bug keeps its traceback
            raise RunStepError(step, _first_line(exc), exc.fix) from exc
        raise


# --------------------------------------------------------------------------- replay


def replay_group(
    cfg: GroupConfig, engine: Engine, *, start: datetime | None = None, force_guards: bool = False,
    landing: LandingPath | None = None, say: Say = print,
) -> list[dict[str, Any]]:
    """Re-apply the group's landed runs in feed-time order, one transaction per run.

    Which runs: those from `start` on (default: those after the target warehouse's last applied
    run of the group; an empty warehouse gets every landed run). Refused (ReplayRefusedError,
    nothing written) when the warehouse already holds a run at or after `start`: undoing an
    applied run's service-request changes is not replay's job; replay into a new warehouse.

    Per run: dealers whose status.json is missing but whose raw.parquet exists are validated
    again from it (never fetched); then the rules run against the warehouse as it is (pipeline.
    compute_run_changes) and the result is applied in one transaction (warehouse.load.apply_run).
    Change files are not rewritten: the landing area is read, not changed. A run with no
    extracted dealer (the DAG's transform failed it) is skipped, as it never applied.
    """
    from dealer_feed.warehouse import reads

    root = landing if landing is not None else _landing_root()
    _step("migrate", lambda: pipeline.migrate(engine))
    last = _step("replay", lambda: reads.last_applied_run(engine, cfg.group))
    if start is not None and last is not None and last.logical_time >= start:
        raise ReplayRefusedError(
            "refused",
            f"the warehouse already holds run {last.run_id} of group {cfg.group}, at or after {start.isoformat()}; "
            "replay never undoes applied runs. Fix: replay into a new, empty warehouse with --url "
            "(every landed run), then point the group's warehouse connection at it",
        )
    times = [t for t in landed_run_times(root, cfg.group)
             if (start is None or t >= start) and (last is None or t > last.logical_time)]
    if not times:
        say(f"replay {cfg.group}: no landed run to apply"
            + (f" after the warehouse's last run {last.run_id}" if last else ""))
        return []
    say(f"replay {cfg.group}: {len(times)} run(s) from {times[0].isoformat()} to {times[-1].isoformat()}")
    results = []
    for t in times:
        ctx = pipeline.RunContext(group=cfg, logical_time=t, landing=root, force_guards=force_guards)
        _revalidate_missing(ctx, engine)
        if not any(s["status"] == "ok" for s in pipeline.dealer_statuses(ctx)):
            say(f"replay {run_id(cfg.group, t)}: skipped, no dealer's vehicles were extracted (it never applied)")
            continue
        summary, outcome = _step(f"replay {ctx.run_id}", lambda: pipeline.reapply(ctx, engine))
        say(f"replay {ctx.run_id}: {_counts_text(summary)}; {_load_text(outcome)}")
        results.append(outcome)
    return results


def _revalidate_missing(ctx: pipeline.RunContext, engine: Engine) -> None:
    """Validate again, from raw.parquet, the dealers of the run whose status.json is missing or
    says only `extracted` (the run's validate did not finish for them)."""
    def unvalidated(dealer_id: str, dataset: str) -> bool:
        if not exists(ctx.dealer_dir(dataset, dealer_id) / "raw.parquet"):
            return False
        return all(s["status"] == "extracted" for s in pipeline.dealer_statuses(ctx, dataset, [dealer_id]))

    missing = sorted({dealer_id for dealer_id in ctx.group.dealer_ids
                      for dataset in ctx.group.dealer(dealer_id).datasets if unvalidated(dealer_id, dataset)})
    if missing:
        log.info("run %s: validating %s again from their raw files", ctx.run_id, ", ".join(missing))
        try:
            pipeline.validate(ctx, missing, engine)
        except pipeline.DealerStepError as exc:
            log.warning("run %s: %s", ctx.run_id, exc)
