"""Run identity: who a run is (group, feed time T) and the ids derived from it.

T is an aware UTC datetime, normalised once where it enters (the DAG's context, the CLI's
`--at`, a test's RunContext) by `as_utc`, and trusted everywhere after. Ids are built only
here, so a warehouse row, a landing path and a log line always spell a run the same way.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

RUN_KEY_FORMAT = "%Y%m%dT%H%M%SZ"

VIN_REGEX = r"^[A-HJ-NPR-Z0-9]{17}$"
"""A well-formed VIN: 17 characters, digits and capitals without I, O, Q. Validation quarantines
a row whose VIN breaks it; the rules count a quarantined row's well-formed VIN as present."""


def as_utc(moment: datetime | date) -> datetime:
    """A feed time as an aware UTC datetime (naive input is taken as UTC; a date is its 00:00 UTC).
    Call it where a time enters the project, not again downstream."""
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
    utc = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    # a plain datetime, whatever came in (Airflow hands pendulum DateTimes, whose arithmetic
    # and repr differ): downstream code sees one type
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond,
                    tzinfo=timezone.utc)


def feed_time_at_or_before(schedule: str, moment: datetime) -> datetime:
    """The feed time a manual run (or `dealer-feed run --at`) processes: the latest time of the
    group's cron `schedule` at or before `moment` (aware UTC). A time on the schedule is its own
    feed time; 04:00 on a daily 06:00 schedule is the previous day's 06:00. One rule, so what a run
    processes follows from what was typed, never from how Airflow inferred an interval."""
    from croniter import croniter  # Airflow's own cron parser; the group file was checked with it

    return as_utc(croniter(schedule, as_utc(moment) + timedelta(microseconds=1)).get_prev(datetime))


def describe_feed_time(T: datetime, schedule: str, given: datetime | None = None) -> str:  # noqa: N803
    """One line saying which feed a run processes and why, for task logs, map indexes and CLI
    output. `given`: the time typed (a manual run's logical date or trigger time, `--at`); None
    for a scheduled or backfill run, whose feed time is its data interval end."""
    if given is None:
        why = "the data interval end"
    elif given == T:
        why = f"on the `{schedule}` schedule"
    else:
        why = f"the latest `{schedule}` time at or before {given:%Y-%m-%d %H:%M:%S} UTC"
    return f"feed time {T:%Y-%m-%d %H:%M} UTC ({why})"


def run_key(T: datetime) -> str:  # noqa: N803 - the spec's name for the feed time
    """Path- and id-safe spelling of a feed time, e.g. 20261124T060000Z."""
    return T.strftime(RUN_KEY_FORMAT)


def parse_run_key(key: str) -> datetime:
    """The feed time a run key spells (inverse of run_key)."""
    return datetime.strptime(key, RUN_KEY_FORMAT).replace(tzinfo=timezone.utc)


def run_id(group: str, T: datetime) -> str:  # noqa: N803
    """Warehouse run id: `{group}:{run_key}` (Airflow's own run id is recorded, never used as key)."""
    return f"{group}:{run_key(T)}"


def sr_id_suffix(T: datetime) -> str:  # noqa: N803
    """What ends a service request id created at feed time T: `:{run_key}`. The id is
    `{group}:{vin}` + this suffix: deterministic, readable, unique (a VIN gets at most one SR per run)."""
    return f":{run_key(T)}"


def dealer_id(enterprise_code: str, company_number: str) -> str:
    """A dealer's id: `{EnterpriseCode}_{CompanyNumber}`, e.g. ZE_ZE7."""
    return f"{enterprise_code}_{company_number}"
