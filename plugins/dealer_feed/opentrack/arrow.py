"""Arrow values for the extract path, built from bytes and numpy buffers.

Why: pyarrow's Python converters (`pa.array` of a list or a numpy array, `pa.scalar`, and any
compute call given a plain Python value) import pandas to ask whether the value is a pandas
object. That is 43 MB in every extract task, which never uses pandas (the extract task's peak
RSS target: bench/results.md). These build the same values with `from_buffers`, which does not;
tests/integration/test_extract_imports.py checks that an extract imports no pandas.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL_STRING = pa.nulls(1, pa.string())[0]
_SEPARATOR = "\x00"


def int64_array(values: np.ndarray) -> pa.Array:
    """A numpy int64 array as an Arrow one (zero copy)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(np.ascontiguousarray(values, np.int64))])


def string_scalar(text: str) -> pa.StringScalar:
    """`text` as an Arrow string scalar (what a compute call would make of a plain str)."""
    data = text.encode()
    return pa.StringArray.from_buffers(1, pa.py_buffer(np.array([0, len(data)], dtype=np.int32)),
                                       pa.py_buffer(data))[0]


def string_array(values: list[str], null: str) -> pa.Array:
    """`values` as an Arrow string array, each `null` as null: joined by NUL into one UTF-8
    buffer and split by Arrow, in C. ValueError if a value holds NUL (it would split in two)."""
    joined = _SEPARATOR.join(values)
    data = joined.encode()
    whole = pa.LargeStringArray.from_buffers(1, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)),
                                             pa.py_buffer(data))
    array = pc.split_pattern(whole, _SEPARATOR).flatten().cast(pa.string())
    if len(array) != len(values):
        raise ValueError(f"{len(array) - len(values)} value(s) hold a NUL character")
    if null in joined:
        array = pc.if_else(pc.equal(array, string_scalar(null)), NULL_STRING, array)
    return array
