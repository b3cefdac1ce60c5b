"""The contract module (issue 12): run identity spelled once, and the one error root."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dealer_feed.contract.errors import DealerFeedError, fix_of, typed_root
from dealer_feed.contract.identity import as_utc, dealer_id, parse_run_key, run_id, run_key, sr_id_suffix

T = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)


def test_feed_time_normalised_once_to_aware_utc():
    kyiv = timezone(timedelta(hours=2))
    assert as_utc(datetime(2026, 11, 24, 8, tzinfo=kyiv)) == T and as_utc(datetime(2026, 11, 24, 6)) == T
    assert as_utc(date(2026, 11, 24)) == T - timedelta(hours=6)
    assert as_utc(T).tzinfo is timezone.utc


def test_ids_of_a_run():
    assert run_key(T) == "20261124T060000Z" and parse_run_key("20261124T060000Z") == T
    assert run_id("demo", T) == "demo:20261124T060000Z"
    assert "demo:1FTEX1CM9BFA00001" + sr_id_suffix(T) == "demo:1FTEX1CM9BFA00001:20261124T060000Z"
    assert dealer_id("ZE", "ZE7") == "ZE_ZE7"


def test_every_typed_error_of_the_project_is_under_the_root():
    from dealer_feed.config import ConfigError
    from dealer_feed.landing import LandingFileError
    from dealer_feed.opentrack.parse import ResponseParseError
    from dealer_feed.validation.core import RawSchemaError
    from dealer_feed.opentrack.errors import OpenTrackError, ServiceUnavailableError
    from dealer_feed.pipeline import DealerStepError
    from dealer_feed.rules.guards import MassCloseError
    from dealer_feed.runner import RunStepError
    from dealer_feed.validation.guards import BatchGuardError
    from dealer_feed.warehouse.errors import StaleChangesError, WarehouseError

    for cls in (ConfigError, LandingFileError, OpenTrackError, DealerStepError, MassCloseError, RunStepError,
                BatchGuardError, WarehouseError, ResponseParseError, RawSchemaError):
        assert issubclass(cls, DealerFeedError), cls
        assert cls.transient is False, cls
    assert ServiceUnavailableError.transient and StaleChangesError.transient


def test_fix_and_root_are_found_behind_a_wrapper():
    class Wrapper(Exception):
        pass

    class Typed(DealerFeedError):
        fix = "clear the load task"

    try:
        try:
            raise Typed("the warehouse moved")
        except Typed as inner:
            raise Wrapper("task failed") from inner
    except Wrapper as outer:
        assert fix_of(outer) == "clear the load task" and isinstance(typed_root(outer), Typed)
    assert fix_of(ValueError("a bug")) == "" and typed_root(None) is None


@pytest.mark.parametrize("moment", [datetime(2026, 11, 24, 6), datetime(2026, 11, 24, 8, tzinfo=timezone(timedelta(hours=2)))])
def test_warehouse_time_params_refuse_untrusted_times(moment):
    """Downstream of the entry, a time that is not aware UTC is a programming error, not silently shifted."""
    from dealer_feed.warehouse._frames import ts_param

    class Conn:
        class dialect:  # noqa: N801
            name = "postgresql"

    if moment.tzinfo is None:
        with pytest.raises((ValueError, TypeError)):
            ts_param(Conn(), moment)
    else:
        with pytest.raises(ValueError, match="not an aware UTC time"):
            ts_param(Conn(), moment)


def test_load_specs_derived_from_the_contract_name_real_warehouse_columns():
    """Every column the load writes (specs derived from contract.schemas) exists in the migration
    DDL with a compatible type: the schemas and the DDL cannot drift apart unnoticed."""
    from dealer_feed.warehouse import load
    from dealer_feed.warehouse.schema import warehouse_columns

    ddl = warehouse_columns()
    compatible = {"text": {"VARCHAR", "TEXT", "CHAR"}, "int": {"INTEGER", "BIGINT", "SMALLINT", "INT"},
                  "float": {"DOUBLE PRECISION", "NUMERIC", "REAL", "FLOAT"}, "bool": {"BOOLEAN"},
                  "ts": {"TIMESTAMP"}, "date": {"DATE"}}
    for table, spec in {"service_requests": [c for c in load.SR_SPEC if c[0] != "is_new"],
                        "service_request_events": load.EVENT_SPEC, "feed_vehicles": load.FEED_SPEC,
                        "quarantine": load.QUARANTINE_SPEC, "etl_run_dealers": load.DEALER_SPEC,
                        "parts_inventory": load.PARTS_SPEC, "repair_orders": load.RO_SPEC}.items():
        for column, kind in spec:
            assert column in ddl[table], f"{table}.{column} is written by the load but not in the DDL"
            assert ddl[table][column].type_name in compatible[kind], (table, column, kind, ddl[table][column])
