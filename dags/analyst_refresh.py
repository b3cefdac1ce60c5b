"""Example consumer DAG: analysts' refresh, scheduled on the demo group's warehouse Asset.

Each successful `load` of `dealer_feed_demo` emits the Asset `dealer_feed_warehouse_demo`
(dealer_feed.airflow_edge.dag_factory.warehouse_asset); Airflow then runs this DAG once for the new
event(s). It reads the service-request counts per dealer and status from the warehouse
and writes them to `data/analyst/demo_service_requests.json` — stand-in for refreshing an
analyst's extract or dashboard. Copy it and change GROUP to consume another group.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag, get_current_context, task

from dealer_feed.airflow_edge.dag_factory import warehouse_asset

GROUP = "demo"


@dag(
    dag_id=f"analyst_refresh_{GROUP}",
    schedule=[warehouse_asset(GROUP)],
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # it only runs when the demo group loads
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=10)},
    tags=["dealer-feed", "analysts", GROUP],
    doc_md=__doc__,
)
def analyst_refresh():
    @task
    def refresh() -> dict:
        import json

        from dealer_feed.config import find_group
        from dealer_feed.landing import data_dir, write_json
        from dealer_feed.airflow_edge.hooks import warehouse_engine
        from dealer_feed.warehouse import reads

        context = get_current_context()
        loaded = []
        for asset_events in (context.get("triggering_asset_events") or {}).values():
            for event in asset_events:
                loaded.append({"source_run_id": event.source_run_id, "timestamp": str(event.timestamp),
                               "extra": dict(event.extra or {})})
        engine = warehouse_engine(find_group(GROUP).connections.warehouse)
        rows = reads.service_request_counts(engine, GROUP).itertuples(index=False)
        summary = {
            "group": GROUP,
            "triggered_by": loaded,
            "service_requests": [{"dealer_id": r[0], "status": r[1], "count": int(r[2])} for r in rows],
        }
        path = write_json(summary, data_dir() / "analyst" / f"{GROUP}_service_requests.json")
        print(f"analyst refresh of {GROUP}: {json.dumps(summary['service_requests'])} -> {path}")
        return {"path": str(path), "events": len(loaded)}

    refresh()


analyst_refresh()
