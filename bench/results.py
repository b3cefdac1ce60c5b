"""bench/results.md: every benchmark's figures in one file, one table shape.

Each bench script calls `record(section, rows, notes)` when it finishes; that rewrites only
its own section (between `<!-- section: NAME -->` markers), so `make bench` fills the file
bench by bench and running one bench alone updates its part. The head names the machine
(bench/machine.py), rewritten on every record.

Table columns (issue 13): stage, size, time, peak memory, baseline, ratio, target, met.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from machine import describe

RESULTS = Path(__file__).resolve().parent / "results.md"
HEAD_END = "<!-- end of head -->"


@dataclass(frozen=True)
class Row:
    """One measured figure. `seconds` / `baseline_seconds`: wall time of the stage and of its fair
    baseline (same rows, same tables and indexes), both measured in the same script. `peak_mb`:
    peak RSS of the process (or task process) that ran the stage. `target`: as the issue states
    it ("≤ 90 s", "≤ 1.5×", "≤ 250 MB"); `met`: whether the figure meets it (None: no target)."""

    stage: str
    size: str
    seconds: float | None
    peak_mb: float | None = None
    baseline_seconds: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.baseline_seconds:
            return None
        return self.seconds / self.baseline_seconds


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}{unit}"


def table(rows: list[Row]) -> str:
    lines = ["| stage | size | time | peak memory | baseline | ratio | target | met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.stage} | {r.size} | {_fmt(r.seconds, ' s')} | {_fmt(r.peak_mb, ' MB', 0)} | "
                     f"{_fmt(r.baseline_seconds, ' s')} | {_fmt(r.ratio, '×')} | {r.target} | {met} |")
    return "\n".join(lines)


def record(section: str, rows: list[Row], notes: str = "", images: list[str] = ()) -> Path:
    """Write (or replace) `section` of bench/results.md: a heading, the table, linked images, notes."""
    body = [f"## {section}", f"_Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC._", "", table(rows)]
    body += [f"\n![{section}]({name})" for name in images]
    if notes:
        body += ["", notes.strip()]
    block = f"<!-- section: {section} -->\n" + "\n".join(body) + f"\n<!-- end: {section} -->"
    head = ("# Benchmark results\n\nWritten by `make bench` (each script rewrites its own section). "
            "Ratios are against a fair baseline measured in the same script; how each bench runs is "
            f"said in its section.\n\n`{describe()}`\n{HEAD_END}")
    text = RESULTS.read_text() if RESULTS.exists() else ""
    sections = text.split(HEAD_END, 1)[1] if HEAD_END in text else ""
    pattern = re.compile(rf"<!-- section: {re.escape(section)} -->.*?<!-- end: {re.escape(section)} -->", re.S)
    sections = pattern.sub(lambda _: block, sections) if pattern.search(sections) else f"{sections.rstrip()}\n\n{block}"
    RESULTS.write_text(f"{head}\n\n{sections.strip()}\n")
    return RESULTS
