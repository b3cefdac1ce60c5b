"""Warehouse-fit rules: the limits come from the migration DDL, and the rules enforce them at the edge.

Every limited column at its limit and one past it (vehicles, parts, repair orders) is a case of
the bad-input catalogue, tests/integration/test_bad_input.py; the end-to-end proof on PostgreSQL
(a 10,240-character stock number quarantined, the rest loaded) is
tests/integration/warehouse/test_warehouse_fit.py.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from validation_helpers import D7, T, make_group, row, table

from support import ROOT
from dealer_feed.contract.identity import VIN_REGEX
from dealer_feed.contract.schemas import VEHICLE_GOOD_SCHEMA
from dealer_feed.validation import limits, validate_vehicle_batches
from dealer_feed.warehouse import schema
from dealer_feed.warehouse.migrations import split_statements

CORE_DDL = (ROOT / "include" / "sql" / "migrations" / "0001_core.sql").read_text()


def _ddl_length(table_name: str, column: str) -> int:
    """The declared VARCHAR length, read with a regex independent of warehouse.schema's parser."""
    body = re.search(rf"CREATE TABLE IF NOT EXISTS {table_name} \((.*?)\n\);", CORE_DDL, re.S).group(1)
    return int(re.search(rf"^\s*{column}\s+VARCHAR\((\d+)\)", body, re.M).group(1))


def test_limits_agree_with_the_ddl():
    found = {lim.column: lim for lim in limits.limits_for("vehicles", VEHICLE_GOOD_SCHEMA)}
    expected = {
        "company_number", "stock_number", "status", "type_nu", "make", "model", "model_code", "body_style",
        "color", "trim",
    }
    assert set(found) == expected
    for column, lim in found.items():
        assert lim.max_length == min(_ddl_length(*home.split(".")) for home in lim.homes), column
    assert found["stock_number"].max_length == 64
    assert "service_requests.stock_number" in found["stock_number"].homes


def test_every_string_column_with_a_length_is_limited_or_covered():
    """No string column of the good schema reaches a VARCHAR(n) column unchecked."""
    limited = {lim.column for lim in limits.limits_for("vehicles", VEHICLE_GOOD_SCHEMA)}
    for field in VEHICLE_GOOD_SCHEMA:
        homes = limits.homes()["vehicles"][field.name]
        if pa.types.is_string(field.type) and any(schema.column(*h).length for h in homes):
            assert field.name in limited or field.name in limits.COVERED_BY_OTHER_RULES, field.name
    # the rules that cover vin and dealer_id imply the column's length
    assert re.fullmatch(r"\^\[[^\]]+\]\{(\d+)\}\$", VIN_REGEX).group(1) == str(schema.column("feed_vehicles", "vin").length)


def test_typed_columns_fit_their_columns():
    """Today every typed column's Arrow type fits its warehouse column, so no range rule is needed."""
    for name in ("model_year", "odometer", "list_price", "vehicle_cost"):
        assert limits._limit(name, VEHICLE_GOOD_SCHEMA.field(name).type, limits.homes()["vehicles"][name]) is None


def test_a_narrower_ddl_column_yields_a_range_rule(monkeypatch):
    """Change the DDL (here: model_year SMALLINT, odometer NUMERIC(7,0)) and the rules follow."""
    ddl = CORE_DDL.replace("model_year          INTEGER", "model_year          SMALLINT")
    tables = schema.columns_from_sql([*split_statements(ddl), "ALTER TABLE feed_vehicles ALTER COLUMN odometer TYPE NUMERIC(7, 0)"])
    monkeypatch.setattr(schema, "warehouse_columns", lambda *a, **k: tables)
    found = {lim.column: lim for lim in limits.limits_for("vehicles", VEHICLE_GOOD_SCHEMA)}
    assert (found["model_year"].low, found["model_year"].high) == (-32768, 32767)
    assert found["odometer"].high == 9_999_999 and found["odometer"].rule_name == "odometer_out_of_range"


def test_schema_parser_reads_create_and_alter():
    tables = schema.columns_from_sql([
        "CREATE TABLE IF NOT EXISTS t (a VARCHAR(10) NOT NULL, b NUMERIC(5, 2), c TEXT, PRIMARY KEY (a), "
        "CONSTRAINT x CHECK (b > 0))",
        "ALTER TABLE t ADD COLUMN d character varying(7), ALTER COLUMN a TYPE VARCHAR(20)",
        "ALTER TABLE t DROP COLUMN c",
    ])
    assert {k: (v.type_name, v.length) for k, v in tables["t"].items()} == {
        "a": ("VARCHAR", 20), "b": ("NUMERIC", None), "d": ("VARCHAR", 7)}
    assert tables["t"]["b"].value_range == (-999.99, 999.99)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_absent_values_are_not_too_long(value):
    result = validate_vehicle_batches({D7: table([row(0, make=value)])}, group=make_group(), logical_time=T)[D7]
    assert result.rule_counts["make_too_long"] == 0


def test_gx_is_asked_only_for_limit_rules_that_can_fail():
    from dealer_feed.validation import core

    asked: list[list[str]] = []

    def recording(check, name, rules):
        asked.append([r.name for r in rules])
        return core.run_suite(check, name, rules)

    group = make_group()
    plan = core._vehicle_plan(group, T.year)
    clean = core._validate(plan, {D7: table([row(0), row(1)])}, group, T, runner=recording)[D7]
    huge = core._validate(plan, {D7: table([row(0), row(1, stock_number="S" * 10_240)])}, group, T, runner=recording)[D7]
    limit_rules = {lim.rule_name for lim in plan.limits}
    assert not limit_rules & set(asked[0])
    assert limit_rules & set(asked[1]) == {"stock_number_too_long"}
    assert set(clean.rule_counts) == set(huge.rule_counts) == {r.name for r in plan.rules}  # every rule reported
    assert huge.rule_counts["stock_number_too_long"] == 1 and not any(clean.rule_counts.values())
    [example] = huge.examples["stock_number_too_long"]
    assert example.endswith("... (10,240 characters)") and len(example) < 120
