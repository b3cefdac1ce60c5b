"""Which feed a run processes (issue 13, manual triggers): one rule for manual Airflow runs and
`dealer-feed run --at`, the data interval end for scheduled runs, and the line that says so."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pendulum
import pytest

from dealer_feed.airflow_edge.dag_factory import feed_time
from dealer_feed.config import find_group
from dealer_feed.contract.identity import describe_feed_time, feed_time_at_or_before

UTC = timezone.utc
DAILY_6 = "0 6 * * *"


@pytest.mark.parametrize(
    ("schedule", "given", "expected"),
    [
        (DAILY_6, datetime(2026, 12, 1, 6, tzinfo=UTC), datetime(2026, 12, 1, 6, tzinfo=UTC)),   # on the schedule
        (DAILY_6, datetime(2026, 12, 1, 4, tzinfo=UTC), datetime(2026, 11, 30, 6, tzinfo=UTC)),  # before today's tick
        (DAILY_6, datetime(2026, 12, 1, 6, 0, 0, 1, tzinfo=UTC), datetime(2026, 12, 1, 6, tzinfo=UTC)),
        (DAILY_6, datetime(2026, 12, 1, 5, 59, 59, 999999, tzinfo=UTC), datetime(2026, 11, 30, 6, tzinfo=UTC)),
        ("0 * * * *", datetime(2026, 12, 1, 4, 0, tzinfo=UTC), datetime(2026, 12, 1, 4, tzinfo=UTC)),
        ("0 * * * *", datetime(2026, 12, 1, 4, 37, 12, tzinfo=UTC), datetime(2026, 12, 1, 4, tzinfo=UTC)),
        (DAILY_6, datetime(2026, 12, 1, 4), datetime(2026, 11, 30, 6, tzinfo=UTC)),  # naive means UTC
        (DAILY_6, datetime(2026, 12, 1, 8, tzinfo=timezone(timedelta(hours=3))), datetime(2026, 11, 30, 6, tzinfo=UTC)),
    ],
)
def test_feed_time_is_the_latest_schedule_time_at_or_before_the_time_given(schedule, given, expected):
    T = feed_time_at_or_before(schedule, given)
    assert T == expected and T.tzinfo is UTC and type(T) is datetime


def test_the_line_says_which_feed_and_why():
    T = datetime(2026, 11, 30, 6, tzinfo=UTC)
    assert describe_feed_time(T, DAILY_6, datetime(2026, 12, 1, 4, tzinfo=UTC)) == (
        "feed time 2026-11-30 06:00 UTC (the latest `0 6 * * *` time at or before 2026-12-01 04:00:00 UTC)")
    assert describe_feed_time(T, DAILY_6, T) == "feed time 2026-11-30 06:00 UTC (on the `0 6 * * *` schedule)"
    assert describe_feed_time(T, DAILY_6) == "feed time 2026-11-30 06:00 UTC (the data interval end)"


def _context(run_type: str, logical_date, run_after, interval_end) -> dict:
    """The keys of Airflow's task context that the rule reads (pendulum times, as Airflow hands them)."""
    return {"dag_run": SimpleNamespace(run_type=SimpleNamespace(value=run_type), run_after=run_after),
            "logical_date": logical_date, "data_interval_end": interval_end}


def test_dag_runs_follow_the_rule_by_run_type():
    demo = find_group("demo")  # daily at 06:00
    four = pendulum.datetime(2026, 12, 1, 4, 0)
    # a manual run with logical date 04:00 processes the previous 06:00 feed, whatever interval Airflow inferred
    T, why = feed_time(demo, _context("manual", four, pendulum.datetime(2026, 12, 1, 13, 58, 12), None))
    assert T == datetime(2026, 11, 30, 6, tzinfo=UTC) and "at or before 2026-12-01 04:00:00" in why
    # a manual run without a logical date: the trigger time, floored (never its seconds)
    T, _ = feed_time(demo, _context("manual", None, pendulum.datetime(2026, 12, 1, 13, 58, 12, 345), None))
    assert T == datetime(2026, 12, 1, 6, tzinfo=UTC)
    # scheduled and backfill runs: the data interval end
    for run_type in ("scheduled", "backfill"):
        end = pendulum.datetime(2026, 12, 1, 6)
        T, why = feed_time(demo, _context(run_type, pendulum.datetime(2026, 11, 30, 6), end, end))
        assert T == end and why.endswith("(the data interval end)")
