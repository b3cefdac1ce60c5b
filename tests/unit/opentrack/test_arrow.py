"""opentrack.arrow builds the same Arrow values pyarrow's converters would, without them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dealer_feed.opentrack.arrow import int64_array, string_array, string_scalar


def test_string_array_equals_pa_array_with_the_marker_as_null() -> None:
    values = ["VIN1", "", "\x01", "Ünïcödé ✓", "a\tb\nc", "\x01", "last"]
    expected = pa.array([None if v == "\x01" else v for v in values], type=pa.string())
    assert string_array(values, null="\x01").equals(expected)
    assert string_array(["", ""], null="\x01").to_pylist() == ["", ""]
    assert string_array(["x"], null="\x01").null_count == 0


def test_string_array_refuses_a_value_holding_nul() -> None:
    with pytest.raises(ValueError, match="1 value"):
        string_array(["a\x00b", "c"], null="\x01")


def test_scalars_and_int_arrays() -> None:
    assert string_scalar("L0").equals(pa.scalar("L0", pa.string()))
    assert int64_array(np.arange(3, 12, 4)).equals(pa.array([3, 7, 11], type=pa.int64()))
