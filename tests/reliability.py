"""The reliability suite's one report (issue 14, "Report").

Each suite of the suite (fault matrix, crash points, bad input, concurrency, secrets)
records its figures here as it runs; at the end of the session `tests/conftest.py` prints
one table with a row per suite and a total row, and writes it as Markdown to
`$DEALER_FEED_RELIABILITY_REPORT` when that is set (`make reliability` sets it).

Columns (what the issue asks the table to show): faults injected / survived / failed
clearly, bad inputs tried / handled, crashes, rows lost, leaks, orders tried.
A figure a suite does not measure stays blank.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

COLUMNS = ("faults_injected", "faults_survived", "faults_failed_clearly", "bad_inputs_tried", "bad_inputs_handled",
           "crashes", "rows_lost", "leaks", "orders_tried")
HEADERS = ("suite", "faults injected", "survived", "failed clearly", "bad inputs tried", "handled", "crashes",
           "rows lost", "leaks", "orders tried")

_FIGURES: dict[str, dict[str, int]] = defaultdict(dict)


def record(suite: str, **figures: int) -> None:
    """Add figures to a suite's row (called once per case: figures accumulate)."""
    unknown = set(figures) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown reliability figure(s) {sorted(unknown)}; known: {', '.join(COLUMNS)}")
    row = _FIGURES[suite]
    for name, value in figures.items():
        row[name] = row.get(name, 0) + int(value)


def export() -> str:
    """The figures recorded in this process, as JSON (a pytest-xdist worker sends them to the controller)."""
    import json

    return json.dumps(_FIGURES)


def merge(exported: str) -> None:
    """Add a worker's exported figures to this process's."""
    import json

    for suite, figures in json.loads(exported).items():
        record(suite, **figures)


def table() -> list[str]:
    """The report as Markdown lines (empty when no suite ran)."""
    if not _FIGURES:
        return []
    rows = [[suite, *(str(_FIGURES[suite].get(c, "")) for c in COLUMNS)] for suite in sorted(_FIGURES)]
    totals = {c: sum(r.get(c, 0) for r in _FIGURES.values()) for c in COLUMNS}
    rows.append(["**total**", *(str(totals[c]) for c in COLUMNS)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]


def write_report() -> Path | None:
    """Write the table to $DEALER_FEED_RELIABILITY_REPORT (if set and any suite ran)."""
    target = os.environ.get("DEALER_FEED_RELIABILITY_REPORT")
    lines = table()
    if not target or not lines:
        return None
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Reliability report\n\n" + "\n".join(lines) + "\n")
    return path
