"""validate_vehicle_batches: exact quarantine rows, splitting, determinism, valid edge cases.

The bad value of every rule (and of every column) is a case of the bad-input catalogue,
tests/integration/test_bad_input.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest
from validation_helpers import D7, D8, D9, RUN_ID, T, row, table, vin

from dealer_feed.landing import write_parquet
from dealer_feed.contract.schemas import VEHICLE_GOOD_SCHEMA
from dealer_feed.validation import (
    QUARANTINE_SCHEMA,
    RawSchemaError,
    validate_batches,
    validate_vehicle_batches,
)


def validate_one(rows, group, dealer=D7, logical_time=T):
    return validate_vehicle_batches({dealer: table(rows)}, group=group, logical_time=logical_time)[dealer]


def quarantined(result) -> list[tuple[int, str]]:
    return list(zip(result.quarantine["row_number"].tolist(), result.quarantine["rules"].tolist(), strict=True))


GOOD_CASES = {
    "model_year lower bound": {"model_year": "1900"},
    "model_year run year + 2": {"model_year": "2028"},
    "model_year absent": {"model_year": ""},
    "zero dates": {"date_in_inventory": "0", "date_modified": "00000000"},
    "empty optional values": {"odometer": "", "list_price": None, "certified_used_car": "", "make": None},
    "flag lower case": {"certified_used_car": "y"},
    "leap day": {"date_in_inventory": "20240229"},
    "no I O Q but all other letters": {"vin": "ABCDEFGHJKLMNPRST"},
    "stock number with spaces kept": {"stock_number": " 12 A "},
}


@pytest.mark.parametrize("overrides", list(GOOD_CASES.values()), ids=list(GOOD_CASES))
def test_valid_edge_cases_pass(group, overrides):
    result = validate_one([row(0, **overrides)], group)
    assert result.quarantined == 0 and result.good_rows == 1
    assert not any(result.rule_counts.values())


def test_forbidden_character_example_names_the_fields(group):
    result = validate_one([row(0), row(1, model="Sor\ufffdento", color="\ufffd"), row(2)], group)
    assert quarantined(result) == [(1, "forbidden_character")]
    assert result.examples["forbidden_character"] == ["row 1: 'color;model'"]
    assert json.loads(result.quarantine["row_json"].iloc[0])["model"] == "Sor\ufffdento"


def test_model_year_limit_follows_the_logical_time(group):
    rows = [row(0, model_year="2029")]
    assert validate_one(rows, group).quarantined == 1
    assert validate_one(rows, group, logical_time=datetime(2027, 1, 1, tzinfo=timezone.utc)).quarantined == 0


def test_mixed_batch_gives_exactly_the_expected_quarantine_rows(group):
    rows = [
        row(0),
        row(1, vin="1HGCM82633A00435I"),
        row(2),
        row(3, stock_number=None, model_year="1850"),
        row(4, vin=vin(9)),
        row(5, dealer_id="XX_1"),
        row(6),
        row(7, vin=vin(9), certified_used_car="?"),
        row(8, date_in_inventory="20261332", date_delivered="0"),
    ]
    result = validate_one(rows, group)
    expected = pd.DataFrame(
        {
            "dealer_group": ["zen"] * 6,
            "dealer_id": [D7] * 6,
            "run_id": [RUN_ID] * 6,
            "dataset": ["vehicles"] * 6,
            "row_number": [1, 3, 4, 5, 7, 8],
            "rules": [
                "vin_format",
                "model_year_range;stock_number_present",
                "vin_unique",
                "dealer_id_known;dealer_id_matches_batch",
                "certified_used_car_parses;vin_unique",
                "date_in_inventory_parses",
            ],
        }
    )
    expected_rows = [1, 3, 4, 5, 7, 8]
    got = result.quarantine
    assert list(got.columns) == [f.name for f in QUARANTINE_SCHEMA]
    pd.testing.assert_frame_equal(
        got.drop(columns="row_json").astype(object), expected.astype(object), check_dtype=False
    )
    # row_json: the original raw values, sorted keys
    for text, n in zip(got["row_json"], expected_rows, strict=True):
        assert json.loads(text) == rows[n]
        assert list(json.loads(text)) == sorted(rows[n])
    assert result.rows == 9 and result.quarantined == 6 and result.good_rows == 3
    assert result.rule_counts["date_in_inventory_parses"] == 1
    assert result.good.column("vin").to_pylist() == [vin(0), vin(2), vin(6)]


def test_good_rows_are_typed_in_the_good_schema(group):
    result = validate_one([row(0, date_in_service="20250101", certified_used_car="Y"), row(1, vin=None)], group)
    assert result.good.schema == VEHICLE_GOOD_SCHEMA
    got = result.good.to_pylist()[0]
    assert got["model_year"] == 2021 and got["odometer"] == 12000 and got["list_price"] == 25999.0
    assert str(got["date_in_service"]) == "2025-01-01" and got["date_delivered"] is None
    assert got["certified_used_car"] is True and got["trim"] == ""


def test_duplicated_vins_are_all_quarantined(group):
    dup_a, dup_b = vin(100), vin(200)
    rows = [row(0, vin=dup_a), row(1), row(2, vin=dup_b), row(3, vin=dup_a), row(4, vin=dup_a), row(5, vin=dup_b)]
    result = validate_one(rows, group)
    assert quarantined(result) == [(0, "vin_unique"), (2, "vin_unique"), (3, "vin_unique"), (4, "vin_unique"),
                                   (5, "vin_unique")]
    assert result.good.column("vin").to_pylist() == [vin(1)]
    assert result.rule_counts["vin_unique"] == 5


def test_missing_vins_are_not_duplicates(group):
    result = validate_one([row(0, vin=None), row(1, vin=None), row(2, vin="")], group)
    assert quarantined(result) == [(0, "vin_present"), (1, "vin_present"), (2, "vin_present")]


def test_same_vin_at_two_dealers_is_not_a_duplicate(group):
    same = vin(7)
    results = validate_vehicle_batches(
        {D7: table([row(0, vin=same)]), D8: table([row(0, vin=same, dealer_id=D8)])}, group=group, logical_time=T
    )
    assert results[D7].quarantined == 0 and results[D8].quarantined == 0


def test_multi_dealer_call_splits_correctly(group):
    batches = {
        D8: table([row(0, dealer_id=D8), row(1, dealer_id=D8, vin="X"), row(2, dealer_id=D8)]),
        D7: table([row(0, vin=vin(5)), row(1), row(2), row(3, vin=vin(5)), row(4, dealer_id=D8)]),
        D9: table([]),
    }
    results = validate_vehicle_batches(batches, group=group, logical_time=T)
    assert list(results) == [D8, D7, D9]
    r8, r7, r9 = results[D8], results[D7], results[D9]
    assert (r8.rows, r8.good_rows, r8.quarantined) == (3, 2, 1)
    assert quarantined(r8) == [(1, "vin_format")]
    assert (r7.rows, r7.good_rows, r7.quarantined) == (5, 2, 3)
    assert quarantined(r7) == [(0, "vin_unique"), (3, "vin_unique"), (4, "dealer_id_matches_batch")]
    assert (r9.rows, r9.good_rows, r9.quarantined) == (0, 0, 0)
    assert r9.good.schema == VEHICLE_GOOD_SCHEMA
    assert set(r8.quarantine["dealer_id"]) == {D8} and set(r7.quarantine["dealer_id"]) == {D7}
    assert r8.good.column("dealer_id").to_pylist() == [D8, D8]
    assert r8.rule_counts["vin_unique"] == 0 and r7.rule_counts["vin_format"] == 0
    assert json.loads(r7.quarantine["row_json"][2])["stock_number"] == "S4"
    # the same batches validated one by one give the same results
    for dealer, batch in batches.items():
        alone = validate_vehicle_batches({dealer: batch}, group=group, logical_time=T)[dealer]
        pd.testing.assert_frame_equal(alone.quarantine, results[dealer].quarantine)
        assert alone.good.equals(results[dealer].good)
        assert alone.rule_counts == results[dealer].rule_counts


def test_all_batches_empty_and_no_batches(group):
    results = validate_vehicle_batches({D7: table([]), D8: pa.table({})}, group=group, logical_time=T)
    assert [r.rows for r in results.values()] == [0, 0]
    assert results[D8].quarantine_table().schema == QUARANTINE_SCHEMA
    assert validate_vehicle_batches({}, group=group, logical_time=T) == {}


def test_pandas_input_is_accepted(group):
    frame = pd.DataFrame([row(0), row(1, vin="bad")])
    result = validate_vehicle_batches({D7: frame}, group=group, logical_time=T)[D7]
    assert quarantined(result) == [(1, "vin_format")]


def test_missing_raw_column_is_a_schema_error(group):
    raw = table([row(0)]).drop_columns(["type_nu", "vin"])
    with pytest.raises(RawSchemaError, match="lacks columns vin, type_nu"):
        validate_vehicle_batches({D7: raw}, group=group, logical_time=T)


def test_unknown_dealer_batch_is_refused(group):
    with pytest.raises(ValueError, match="unknown dealers XX_1"):
        validate_vehicle_batches({"XX_1": table([row(0)])}, group=group, logical_time=T)


def test_validation_is_deterministic(group, tmp_path):
    rows = [row(i, vin=vin(i % 7)) if i % 5 == 0 else row(i) for i in range(40)]
    rows[3]["date_in_inventory"] = "20261332"
    rows[11]["color"] = 'Red "metallic" / \\ \n ünicode'
    first = validate_one(rows, group)
    second = validate_one(rows, group)
    pd.testing.assert_frame_equal(first.quarantine, second.quarantine)
    assert first.good.equals(second.good)
    assert first.rule_counts == second.rule_counts and first.examples == second.examples
    assert first.report == second.report
    a = write_parquet(first.quarantine_table(), tmp_path / "a.parquet").read_bytes()
    b = write_parquet(second.quarantine_table(), tmp_path / "b.parquet").read_bytes()
    assert a == b
    assert first.quarantine["row_number"].is_monotonic_increasing


def test_row_json_escapes_like_json(group):
    nasty = 'a "quoted" \\ back/slash\ttab\nnew \x01 ctrl ünï'
    rows = [row(0, vin="bad", color=nasty, trim=None)]
    result = validate_one(rows, group)
    assert json.loads(result.quarantine["row_json"][0]) == rows[0]


def test_quarantine_table_schema(group):
    result = validate_one([row(0), row(1, vin="bad")], group)
    q = result.quarantine_table()
    assert q.schema == QUARANTINE_SCHEMA
    assert q.to_pylist()[0] | {"row_json": None} == {
        "dealer_group": "zen", "dealer_id": D7, "run_id": RUN_ID, "dataset": "vehicles", "row_number": 1,
        "rules": "vin_format", "row_json": None,
    }


def test_validate_batches_dispatches_and_refuses_unknown_datasets(group):
    result = validate_batches("vehicles", {D7: table([row(0)])}, group=group, logical_time=T)
    assert result[D7].good_rows == 1
    with pytest.raises(ValueError, match="no validation suite for dataset 'cars'"):
        validate_batches("cars", {}, group=group, logical_time=T)
