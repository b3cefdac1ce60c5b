"""The one DAG factory: a dealer-group config file in, an Airflow DAG out.

Each `dags/dealer_feed_<group>.py` is a two-line stub calling `build_dag("<group>")`, so a
broken group file shows as an import error of that stub only, and the other groups' DAGs
still load. Task shape (why): extracting is mapped over dealer batches of `dealers_per_task`
(demo: 1, large: 25), fetched concurrently within a batch; a 300-dealer hourly run is 12
extract tasks, not 300 instances each paying Airflow's ~0.3 s start. Validation is one
task for the run: Great Expectations costs ~3 s and ~150 MB to import, paid once per run
instead of once per batch, and the extract tasks stay small (issue 13). A failed dealer
turns its batch (or `validate`) red, is named in the error, and clearing that task with
downstream re-runs it (dealers already extracted reuse their raw files).

Only config, contract, pipeline and this subpackage are imported at module level; the steps
import the heavy libraries themselves.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from dealer_feed import pipeline
from dealer_feed.airflow_edge import alerts, hooks
from dealer_feed.config import FORCE_PARAM, GroupConfig, find_group
from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import describe_feed_time, feed_time_at_or_before

log = logging.getLogger(__name__)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
    # one alert per failed task (logged; POSTed when connection dealer_feed_alerts exists)
    "on_failure_callback": alerts.on_task_failure,
}


ARROW_ALLOCATOR_ENV = "ARROW_DEFAULT_MEMORY_POOL"
"""Read once, at pyarrow's import: which allocator Arrow's default memory pool uses."""


def warehouse_asset(group: str) -> Asset:
    """The Asset a successful load of `group` updates; analysts' DAGs schedule on it (by name).

    Why the `x-` scheme: it is Airflow's mark of a private scheme, which needs no normalizer; any
    other scheme makes every parse of the DAG file (in each task process too) load every
    provider's asset handlers, with the Amazon provider's boto3 (13 MB per task process)."""
    return Asset(name=f"dealer_feed_warehouse_{group}", uri=f"x-dealer-feed://warehouse/{group}")


def feed_time(cfg: GroupConfig, context: dict[str, Any]) -> tuple[datetime, str]:
    """Which feed this run processes, and the line saying why (docs/RUNBOOK.md, "Which feed a run
    processes"). Scheduled and backfill runs: the data interval end (SPEC). Manual runs: the latest
    time of the group's schedule at or before the logical date typed, or the trigger time when
    the run has no logical date (Airflow then has no data interval, and its trigger time has
    seconds): the rule `dealer-feed run --at` follows too, so the feed time follows from what was
    typed, never from which path (CLI, REST, UI) Airflow inferred an interval on."""
    dag_run = context["dag_run"]
    if str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "manual":
        given = context.get("logical_date") or dag_run.run_after
        T = feed_time_at_or_before(cfg.schedule, given)
        return T, describe_feed_time(T, cfg.schedule, given)
    T = context["data_interval_end"]  # RunContext normalises it (contract.identity.as_utc)
    return T, describe_feed_time(T, cfg.schedule)


def _run_context(cfg: GroupConfig, context: dict[str, Any]) -> pipeline.RunContext:
    T, why = feed_time(cfg, context)
    log.info("%s", why)
    return pipeline.RunContext(group=cfg, logical_time=T, landing=hooks.landing_root(),
                               force_guards=bool(context["params"].get(FORCE_PARAM)))


def _fail_permanent(exc: Exception) -> None:
    """Our typed errors (contract.errors.DealerFeedError) say whether retrying can help. Those
    that say no (missing grant, bad credentials, guards) fail at once with their fix line;
    transient faults and unknown errors raise as they are, so Airflow retries them with backoff."""
    if isinstance(exc, DealerFeedError) and not exc.transient:
        raise AirflowFailException(str(exc)) from exc
    raise exc


def _doc_md(cfg: GroupConfig) -> str:
    s = cfg.settings
    dealers = "\n".join(f"| {d.dealer_id} | {d.server_name} | {', '.join(d.datasets)} | {', '.join(d.make_codes)} |"
                        for d in cfg.dealers)
    return f"""### Dealer group `{cfg.group}`
{cfg.description}

Config: `include/dealer_groups/{cfg.group}.yaml` · schedule `{cfg.schedule}` (UTC; feed time = data interval end; a manual run: the latest schedule time at or before its logical date)
· connections `{cfg.connections.opentrack}` (OpenTrack), `{cfg.connections.warehouse}` (warehouse)

Settings: Track Stock No and Client = **{s.track_stock_and_client.mode}** {s.track_stock_and_client.days or ''};
Auto Close = **{s.auto_close.mode}** {s.auto_close.days or ''}; {len(s.vehicle_type_mapping)} vehicle type mappings;
{len(s.client_dealer)} client-dealer rows. Guards: bad rows > {cfg.thresholds.max_bad_fraction:.0%} per dealer,
auto-closes > {cfg.thresholds.max_close_fraction:.0%} of a dealer's active SRs.

Run parameters: `force_guards` (true: load past the empty-feed and mass-close guards — only after checking
the dealer really sold out), `dealers` (limit the run to these dealer ids; the others are not extracted and
none of their service requests closes).

Tasks: `extract` (one mapped task per dealer batch; its name gives the feed time and the dealers) beside `migrate` →
`validate` (every extracted dealer, one task) → `transform` → `load` (emits Asset `dealer_feed_warehouse_{cfg.group}`). Transient faults retry with exponential
backoff; typed permanent errors (missing grant, bad credentials, guards) fail at once with a fix line.
A failed task logs one `[dealer-feed] FAILED ...` alert (and POSTs it to connection `dealer_feed_alerts` when it
exists). Every task is safe to clear and rerun. `load` depends on the previous run's `load`: runs apply in
logical-time order, so fix and clear a failed run before later runs can load; a run that transformed meanwhile
is recomputed by its load against the warehouse it applies to. Clearing a fixed dealer's batch with downstream
adds it to its run while that run is the group's last applied one; after a later run, the load says it caught up.

Data lands under `<landing root>/{cfg.group}/<dataset>/<dealer>/run=<T>/` (root: `DEALER_FEED_LANDING_URL`, default
`data/landing`; `s3://bucket/prefix` through connection `dealer_feed_landing`, docs/OPERATIONS.md) and loads into the warehouse tables
(see docs/WAREHOUSE.md). Runbook (every error, its fix, which task to clear; backfills): docs/RUNBOOK.md.

| dealer | server | datasets | make codes |
|---|---|---|---|
{dealers}
"""


def build_dag(group_name: str):
    """Build the DAG of one dealer group from include/dealer_groups/<group_name>.yaml."""
    cfg = find_group(group_name)

    @dag(
        dag_id=f"dealer_feed_{cfg.group}",
        description=cfg.description or f"Dealer feed for group {cfg.group}",
        schedule=CronDataIntervalTimetable(cfg.schedule, timezone="UTC"),
        start_date=cfg.start_date,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=cfg.paused,
        default_args=DEFAULT_ARGS,
        doc_md=_doc_md(cfg),
        tags=["dealer-feed", cfg.group],
        params={
            FORCE_PARAM: Param(False, type="boolean", description="Load past the empty-feed and mass-close guards."),
            "dealers": Param([], type="array", items={"type": "string", "enum": list(cfg.dealer_ids)},
                             description="Limit this run to these dealer ids (empty: all)."),
        },
    )
    def dealer_feed():
        @task(execution_timeout=timedelta(minutes=5))
        def migrate() -> list[str]:
            """Applies pending migrations (owner role); with none pending it only reads the version,
            so the loader role runs it too. A role that may not migrate fails at once (fix line)."""
            try:
                return pipeline.migrate(hooks.warehouse_engine(cfg.connections.warehouse))
            except Exception as exc:
                _fail_permanent(exc)

        # the map index names the batch's feed time and dealers (Grid view, `airflow tasks states-for-dag-run`)
        @task(map_index_template="{{ feed_and_dealers }}")
        def extract(dealer_ids: list[str]) -> list[dict[str, Any]]:
            """Fetch the batch's dealers into raw files: HTTP, parser and Arrow only (no GX, no
            pandas, no warehouse), so many of these run side by side in little memory."""
            # Set before this task process first imports pyarrow (its DAG file imports none, as
            # tests/dags/test_parse_speed.py checks): Arrow's system allocator gives the fetch
            # threads' many small tables back, mimalloc's per-thread heaps held 30 MB more.
            os.environ.setdefault(ARROW_ALLOCATOR_ENV, "system")
            context = get_current_context()
            try:
                ctx = _run_context(cfg, context)
                context["feed_and_dealers"] = alerts.batch_label(ctx.T, dealer_ids)
                return pipeline.extract_batch(ctx, dealer_ids, context["params"].get("dealers"),
                                              hooks.opentrack_client(cfg.connections.opentrack))
            except DealerFeedError as exc:
                _fail_permanent(exc)

        @task(trigger_rule="all_done")
        def validate() -> list[dict[str, Any]]:
            """Validate every extracted dealer of the run at once (GX imported once per run); runs
            after failed batches too, so the dealers that were extracted go on."""
            context = get_current_context()
            try:
                return pipeline.validate(_run_context(cfg, context), context["params"].get("dealers"),
                                         hooks.warehouse_engine(cfg.connections.warehouse))
            except DealerFeedError as exc:
                _fail_permanent(exc)

        @task(trigger_rule="all_done")
        def transform() -> dict[str, Any]:
            context = get_current_context()
            try:
                summary = pipeline.transform(_run_context(cfg, context), hooks.warehouse_engine(cfg.connections.warehouse))
            except Exception as exc:
                _fail_permanent(exc)
            alerts.post_notice(alerts.empty_first_feed_notice(context, summary, pipeline.EMPTY_FIRST_FEED_FIX))
            return summary

        # depends_on_past: runs of a group apply in logical-time order, so a failed load
        # holds back the next runs' loads until it is fixed and cleared (or marked
        # success to skip that run); the warehouse also refuses an older run (RunOrderError).
        # Changes transformed against an older warehouse state are recomputed by the load
        # (StaleChangesError is transient); a missing change file is a permanent LandingFileError.
        @task(outlets=[warehouse_asset(cfg.group)], depends_on_past=True)
        def load(summary: dict[str, Any]) -> dict[str, Any]:
            context = get_current_context()
            ctx = _run_context(cfg, context)
            try:
                return pipeline.load(ctx, hooks.warehouse_engine(cfg.connections.warehouse),
                                     airflow_run_id=context["run_id"])
            except Exception as exc:
                _fail_permanent(exc)

        @task(trigger_rule="one_failed", retries=0)
        def watcher() -> None:
            """Fail the run when any task failed. Airflow judges a run by its last task
            (`load`), which still succeeds when one dealer failed and the others loaded;
            this keeps such a run red until the failed task is cleared and succeeds."""
            context = get_current_context()
            ctx = _run_context(cfg, context)
            failed = [s["dealer_id"] for s in pipeline.dealer_statuses(ctx) if s["status"] == "failed"]
            # The load's return value is in XCom only when `load` succeeded.
            loaded = context["ti"].xcom_pull(task_ids="load")
            raise AirflowFailException(alerts.watcher_message(cfg.group, ctx.run_id, failed, loaded))

        # migrate runs beside the extract batches (they need no warehouse), off the run's critical
        # path; validate is the first to read the warehouse, load the first to write it, and a
        # failed migrate holds the load back (all_success), not the fetching.
        migrated = migrate()
        batches = extract.expand(dealer_ids=cfg.dealer_batches())
        validated = validate()
        [migrated, batches] >> validated
        loaded = load(validated >> transform())
        migrated >> loaded
        [migrated, batches, validated, loaded] >> watcher()

    return dealer_feed()
