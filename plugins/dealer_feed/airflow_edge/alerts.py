"""Failure alerts: one message per failed task, logged and (when configured) POSTed to a webhook.

Every task of a dealer-group DAG has `on_failure_callback=alerts.on_task_failure` (set in
dag_factory). The message names what on-call needs to act without opening the UI:

    [dealer-feed] FAILED group=demo run=scheduled__2026-11-24T06:00:00+00:00 task=extract[feed 2026-11-24 06:00 UTC: ZE_ZE7]
    try=1/4 dealer=ZE_ZE7: AccessNotGrantedError: dealer ZE_ZE7 has not granted method Vehicle ...
    Fix: ask the dealership to add the Vehicle method for the vendor under Data Exchange > OpenTrack ...

Webhook: when the Airflow connection `dealer_feed_alerts` exists (type http, read by the http
provider's HttpHook: host = the full URL, or host + schema/port + extra {"endpoint": "/path"};
other extras are sent as headers, as HttpHook does), the message is POSTed as JSON `{"text": message, "group", "run_id", "task_id",
"map_index", "dealers", "error", "fix", "try_number", "tries_allowed", "log_url"}` — Slack / Teams / Mattermost
incoming webhooks accept `text`. A webhook that fails is logged, never raised: an alert
must not turn into a second failure. The connection id can be changed with the
environment variable DEALER_FEED_ALERTS_CONN_ID.

Imports nothing heavy (the http provider only when posting), so dag_factory can import it at parse time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dealer_feed.contract.errors import fix_of, typed_root

log = logging.getLogger(__name__)

ALERTS_CONN_ID = "dealer_feed_alerts"
ALERTS_CONN_ENV = "DEALER_FEED_ALERTS_CONN_ID"
WEBHOOK_TIMEOUT_S = 10

@dataclass
class Alert:
    """What one failure alert says (also the webhook's JSON body, plus `text`)."""

    group: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    rendered_map_index: str | None
    try_number: int | None
    tries_allowed: int | None
    """How many tries the task instance has in all, so the last one reads `try=4/4`."""
    dealers: list[str] = field(default_factory=list)
    error_type: str = ""
    error: str = ""
    fix: str = ""
    log_url: str | None = None
    kind: str = "FAILED"
    """FAILED (a task failed) or NOTICE (the run goes on, but on-call should look)."""

    @property
    def text(self) -> str:
        task = self.task_id
        if self.map_index is not None and self.map_index >= 0:
            task += f"[{self.rendered_map_index or self.map_index}]"
        tries = f" try={self.try_number}/{self.tries_allowed}" if self.try_number else ""
        dealers = f" dealer={','.join(self.dealers)}" if self.dealers else ""
        lines = [
            f"[dealer-feed] {self.kind} group={self.group} run={self.run_id} task={task}{tries}{dealers}: "
            f"{self.error_type}: {_first_line(self.error)}",
            f"Fix: {self.fix}" if self.fix else "Fix: see the task log; docs/RUNBOOK.md lists every error.",
        ]
        if self.log_url:
            lines.append(f"Log: {self.log_url}")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        body = asdict(self)
        body["text"] = self.text
        return body


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def fix_line(exc: BaseException | None) -> str:
    """The fix line of the typed error behind a failure (contract.errors: every error of ours
    carries `fix`; Airflow's AirflowFailException is raised `from` it). No message parsing."""
    return fix_of(exc)


_LABEL_DEALERS = ": "
"""What separates the feed time from the dealer ids in an extract batch's label."""


def batch_label(T: datetime, dealer_ids: Sequence[str]) -> str:  # noqa: N803 - the spec's name
    """An extract batch's map index, `feed 2026-11-30 06:00 UTC: ZE_ZE7, ZE_ZE8`: which feed and
    which dealers, in the Grid view and in the alert (dealers_of reads the ids back)."""
    return f"feed {T:%Y-%m-%d %H:%M} UTC{_LABEL_DEALERS}{', '.join(dealer_ids)}"


def dealers_of(exc: BaseException | None, rendered_map_index: str | None) -> list[str]:
    """Dealer ids the failure concerns: from the error (`dealer_id` of a typed OpenTrack or
    guard error, `dealers` of a DealerStepError), else from the mapped task's rendered map
    index (batch_label)."""
    root = typed_root(exc)
    found: list[str] = []
    for candidate in (root, exc):
        if candidate is None:
            continue
        for attr in ("dealer_id", "dealers"):
            value = getattr(candidate, attr, None)
            if isinstance(value, str) and value:
                found.append(value)
            elif isinstance(value, (list, tuple, set)):
                found.extend(str(v) for v in value)
    if not found and rendered_map_index:
        found = [d.strip() for d in rendered_map_index.rpartition(_LABEL_DEALERS)[2].split(",") if d.strip()]
    return list(dict.fromkeys(found))


def tries_allowed(ti: Any, task: Any) -> int | None:
    """The number of tries a task instance has in all.

    Airflow's `max_tries` is not that: it is the last try number that may still be retried
    (`is_eligible_to_retry`: try_number <= max_tries; it starts at `retries` and a clear
    raises it to try_number + retries), so the last try is max_tries + 1 — Airflow logs
    "attempt N of max_tries + 1" too. Reading max_tries as the total gave `try=4/3`.
    """
    max_tries = getattr(ti, "max_tries", None)
    if isinstance(max_tries, int) and max_tries >= 0:
        return max_tries + 1
    return getattr(task, "retries", 0) + 1 if task is not None else None


def build_alert(context: dict[str, Any]) -> Alert:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    exc = context.get("exception")
    rendered = getattr(ti, "rendered_map_index", None)
    root = typed_root(exc) if isinstance(exc, BaseException) else None
    return Alert(
        group=dag_id.removeprefix("dealer_feed_"),
        dag_id=dag_id,
        run_id=str(context.get("run_id") or getattr(ti, "run_id", "?")),
        task_id=getattr(ti, "task_id", "?"),
        map_index=getattr(ti, "map_index", -1),
        rendered_map_index=str(rendered) if rendered not in (None, "") else None,
        try_number=getattr(ti, "try_number", None),
        tries_allowed=tries_allowed(ti, context.get("task")),
        dealers=dealers_of(exc if isinstance(exc, BaseException) else None, rendered),
        error_type=type(root or exc).__name__ if exc is not None else "TaskFailed",
        error=str(root or exc or "the task failed (timeout, killed, or upstream failure); see its log"),
        fix=fix_line(exc),
        log_url=getattr(ti, "log_url", None),
    )


def empty_first_feed_notice(context: dict[str, Any], summary: dict[str, Any], fix: str) -> Alert | None:
    """A NOTICE when the transform's summary lists dealers whose first vehicle feed was empty:
    the run succeeds (a new dealer may have no stock yet), but a wrong company number or a
    service answering nothing looks the same, so it must not pass quietly (issue: never 0 rows
    silently). `fix` is the pipeline's own fix line (pipeline.EMPTY_FIRST_FEED_FIX). Logged and POSTed
    like a failure alert; None when there is nothing to say."""
    dealers = list(summary.get("empty_first_feeds") or [])
    if not dealers:
        return None
    alert = build_alert(context)
    alert.kind, alert.dealers, alert.error_type = "NOTICE", dealers, "EmptyFirstFeed"
    alert.error = (f"OpenTrack returned 0 vehicles for {len(dealers)} dealer(s) with no earlier run: "
                   f"{', '.join(dealers)}")
    alert.fix = fix
    return alert


def post_notice(alert: Alert | None) -> None:
    """Log a notice at WARNING and POST it when a webhook is configured (no-op for None)."""
    if alert is not None:
        log.warning("%s", alert.text)
        post_webhook(alert)


def watcher_message(group: str, run_id: str, failed_dealers: list[str], load_result: dict[str, Any] | None) -> str:
    """What the `watcher` task says when a task of the run failed, from what actually happened:
    it only says the other dealers loaded when `load` succeeded (`load_result` is its XCom
    return value, None when it failed or never ran)."""
    dealers = list(dict.fromkeys(failed_dealers))
    failed = f"dealer(s) {', '.join(dealers)} failed" if dealers else "a task failed"
    if load_result:
        if load_result.get("status") == "already_applied":
            outcome = "The run's load had already been applied earlier"
        else:
            outcome = "The other dealers loaded" if dealers else "The run loaded"
        return (
            f"group {group} run {run_id}: {failed}. {outcome}; a failed dealer's service requests were left "
            "untouched and its inventory is picked up by the next run that extracts it (each feed is a full "
            "snapshot). Fix the cause named in the failed task's log; docs/RUNBOOK.md lists every error."
        )
    return (
        f"group {group} run {run_id}: {failed}, and nothing of this run was loaded: task `load` did not succeed "
        "(it failed, or did not run). Later runs' loads wait for this one (depends_on_past). Fix the cause named "
        "in the failed task's log (the load's own log when it failed), then clear that task; docs/RUNBOOK.md "
        "lists every error."
    )


def post_webhook(alert: Alert, conn_id: str | None = None) -> bool:
    """POST the alert through the http provider's HttpHook of the webhook connection; False (and
    a log line) when the connection is absent or the POST fails."""
    from dealer_feed.airflow_edge.hooks import alert_webhook

    conn_id = conn_id or os.environ.get(ALERTS_CONN_ENV) or ALERTS_CONN_ID
    try:
        hook = alert_webhook(conn_id)
        conn = hook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - not configured: alerts go to the log only
        log.debug("no alert webhook connection %r; alert logged only", conn_id)
        return False
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(conn.host or "")  # webhook URLs carry their token in the path
        if conn.password:
            mask_secret(conn.password)
    except Exception:  # noqa: BLE001 - outside a task: nothing to mask for
        pass
    try:
        hook.run(endpoint=(conn.extra_dejson or {}).get("endpoint"), data=json.dumps(alert.payload(), default=str),
                 headers={"Content-Type": "application/json"}, extra_options={"timeout": WEBHOOK_TIMEOUT_S})
    except Exception as exc:  # noqa: BLE001 - an alert must not become a second failure
        log.warning("alert webhook %r failed: %s", conn_id, type(exc).__name__)
        return False
    log.info("alert sent to webhook connection %r", conn_id)
    return True


def on_task_failure(context: dict[str, Any]) -> None:
    """Airflow on_failure_callback: log one alert line and POST it when a webhook is configured."""
    try:
        alert = build_alert(context)
    except Exception:  # noqa: BLE001 - never let the callback itself fail
        log.exception("could not build the failure alert")
        return
    log.error("%s", alert.text)
    post_webhook(alert)
