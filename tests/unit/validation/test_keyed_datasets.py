"""parts and repair_orders suites: dealer checks, key present, date_* columns parse."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from validation_helpers import D7, D8, T

from dealer_feed.validation import validate_part_batches, validate_repair_order_batches


def parts(rows):
    return pa.table({k: pa.array([r[k] for r in rows], pa.string()) for k in rows[0]})


def test_parts_suite(group):
    base = {"dealer_id": D7, "part_number": "P1", "description": "Filter", "date_last_sold": "20261101"}
    rows = [
        base,
        base | {"part_number": ""},
        base | {"dealer_id": "XX_9"},
        base | {"date_last_sold": "20261332"},
        base | {"part_number": "P1", "date_last_sold": "0"},
        base | {"description": "Fil\ufffdter"},
    ]
    result = validate_part_batches({D7: parts(rows)}, group=group, logical_time=T)[D7]
    assert list(zip(result.quarantine["row_number"], result.quarantine["rules"], strict=True)) == [
        (1, "part_number_present"),
        (2, "dealer_id_known;dealer_id_matches_batch"),
        (3, "date_last_sold_parses"),
        (5, "forbidden_character"),
    ]
    assert result.examples["forbidden_character"] == ["row 5: 'description'"]
    assert result.dataset == "parts" and set(result.quarantine["dataset"]) == {"parts"}
    assert result.good.schema.field("date_last_sold").type == pa.date32()
    assert result.good.column("date_last_sold").to_pylist() == [dt.date(2026, 11, 1), None]


def test_repair_orders_suite_splits_dealers(group):
    ro = {"dealer_id": D7, "repair_order_number": "R1", "vin": "X", "date_opened": "20261101"}
    batches = {
        D7: parts([ro, ro | {"repair_order_number": None}]),
        D8: parts([ro | {"dealer_id": D8}, ro | {"dealer_id": D8, "date_opened": "2026"}]),
    }
    results = validate_repair_order_batches(batches, group=group, logical_time=T)
    assert results[D7].quarantine["rules"].tolist() == ["repair_order_number_present"]
    assert results[D8].quarantine["rules"].tolist() == ["date_opened_parses"]
    assert results[D8].quarantine["row_number"].tolist() == [1]
    assert results[D7].good_rows == results[D8].good_rows == 1


def test_promised_date_time_rule_says_what_it_parses():
    """PromisedDateTime is yyyyMMddHHmm (real payloads): its rule must not claim a calendar date."""
    from dealer_feed.validation.suites import keyed_rules

    rules = {r.name: r.description for r in keyed_rules(["ZE_ZE9"], "repair_order_number", ["date_opened", "date_promised"])}
    assert "yyyyMMddHHmm" in rules["date_promised_parses"]
    assert "yyyyMMdd calendar date" in rules["date_opened_parses"]
