"""opentrack.values: typing OpenTrack strings, with a mask of present-but-unparsable values."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from validation_helpers import row, table

from dealer_feed.opentrack import values as V


def _py(series: pd.Series) -> list:
    return [None if pd.isna(x) else x for x in series.tolist()]


def test_dates_zero_and_empty_are_null_not_invalid():
    typed, invalid = V.parse_dates(pd.Series(["0", "00000000", "", "  ", None, " 0 "]))
    assert _py(typed) == [None] * 6
    assert not invalid.any()


@pytest.mark.parametrize(
    "text", ["20261332", "20260230", "20250229", "20260000", "20260100", "2026011", "202601011", "2026-01-01", "abc", "-2026011"]
)
def test_bad_dates_are_null_and_invalid(text):
    typed, invalid = V.parse_dates(pd.Series([text]))
    assert _py(typed) == [None]
    assert invalid.tolist() == [True]


def test_good_dates():
    typed, invalid = V.parse_dates(pd.Series(["20240229", "20261231", " 20260101 ", "19000101"]))
    assert _py(typed) == [dt.date(2024, 2, 29), dt.date(2026, 12, 31), dt.date(2026, 1, 1), dt.date(1900, 1, 1)]
    assert typed.dtype == pd.ArrowDtype(pa.date32())
    assert not invalid.any()


@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
@settings(max_examples=200, deadline=None)
def test_every_calendar_date_round_trips(day):
    typed, invalid = V.parse_dates([day.strftime("%Y%m%d").rjust(8, "0")])
    assert _py(typed) == [day] and not invalid.any()


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
@settings(max_examples=300, deadline=None)
def test_any_eight_digits_parse_iff_a_real_date(text):
    typed, invalid = V.parse_dates([text])
    try:
        expected = dt.datetime.strptime(text, "%Y%m%d").date() if text != "00000000" else None
        real = True
    except ValueError:
        expected, real = None, False
    assert _py(typed) == [expected]
    assert invalid.tolist() == [not real]


def test_flags():
    typed, invalid = V.parse_flags(pd.Series(["Y", "N", "y", " n ", "", None, "X", "yes", "1"]))
    assert _py(typed) == [True, False, True, False, None, None, None, None, None]
    assert invalid.tolist() == [False] * 6 + [True] * 3
    assert typed.dtype == pd.ArrowDtype(pa.bool_())


def test_ints_and_int32_overflow():
    typed, invalid = V.parse_ints(pd.Series(["2024", " 7 ", "-3", "+4", "1.5", "12,000", "99999999999", "", None]), pa.int32())
    assert _py(typed) == [2024, 7, -3, 4, None, None, None, None, None]
    assert invalid.tolist() == [False] * 4 + [True] * 3 + [False] * 2
    assert typed.dtype == pd.ArrowDtype(pa.int32())


def test_decimals():
    typed, invalid = V.parse_decimals(pd.Series(["1", "1.50", ".5", "-2.", "+3", "1e3", "nan", "inf", "1,000", "N/A", "", None]))
    assert _py(typed) == [1.0, 1.5, 0.5, -2.0, 3.0] + [None] * 7
    assert invalid.tolist() == [False] * 5 + [True] * 5 + [False] * 2


def test_converters_keep_the_index_and_accept_arrow():
    s = pd.Series(["20260101", "x"], index=[10, 20], name="d")
    typed, invalid = V.parse_dates(s)
    assert typed.index.tolist() == [10, 20] and invalid.index.tolist() == [10, 20]
    arr, mask = V.date_array(pa.chunked_array([["20260101"], ["0", "x"]]))
    assert arr.to_pylist() == [dt.date(2026, 1, 1), None, None] and mask.tolist() == [False, False, True]


def test_type_vehicles_gives_the_good_schema():
    raw = table([row(0), row(1, model_year="20X1", certified_used_car="Y", date_in_service="20250615", list_price="")])
    typed, invalid = V.type_vehicles(raw)
    assert typed.schema == V.VEHICLE_GOOD_SCHEMA
    assert typed.schema.field("model_year").type == pa.int32()
    assert typed.schema.field("odometer").type == pa.int64()
    assert typed.schema.field("date_in_inventory").type == pa.date32()
    assert typed.schema.field("list_price").type == pa.float64()
    assert typed.schema.field("certified_used_car").type == pa.bool_()
    rows = typed.to_pylist()
    assert rows[0]["model_year"] == 2021 and rows[0]["date_in_service"] is None and rows[0]["certified_used_car"] is False
    assert rows[1]["model_year"] is None and rows[1]["date_in_service"] == dt.date(2025, 6, 15)
    assert rows[1]["list_price"] is None and rows[1]["certified_used_car"] is True
    assert invalid["model_year"].tolist() == [False, True]
    assert not invalid["list_price"].any()
    assert set(invalid) == {f.name for f in V.VEHICLE_GOOD_SCHEMA if not pa.types.is_string(f.type)}
