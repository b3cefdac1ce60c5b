"""Human-readable results: a one-screen summary for the task log and a static HTML report.

The HTML report is self-made (one small static page, no JavaScript, no GX Data Docs
site): it is written next to the dealer's run files (`.../run=T/report.html`) and its
content depends only on the validation result, so a rerun writes the same bytes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from dealer_feed.landing import LandingPath, write_text

if TYPE_CHECKING:
    from dealer_feed.validation.core import DealerValidation

REPORT_NAME = "report.html"
QUARANTINE_PREVIEW_ROWS = 50


def summary_text(validation: DealerValidation) -> str:
    """One screen for the task log: dealer, rows, passed, each rule with failures + examples."""
    v = validation
    lines = [
        f"validation {v.dataset} dealer={v.dealer_id} run={v.run_id}",
        f"  rows={v.rows:,} passed={v.good_rows:,} quarantined={v.quarantined:,} "
        f"bad_fraction={v.bad_fraction * 100:.2f}%",
    ]
    width = max((len(r) for r in v.rule_counts), default=10)
    for rule, failed in v.rule_counts.items():
        mark = "ok  " if not failed else "FAIL"
        line = f"  {mark} {rule:<{width}} {failed:>8,}"
        if failed:
            line += "  e.g. " + "; ".join(v.examples.get(rule, []))
        lines.append(line)
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fde8e8}
code{font-size:12px;word-break:break-all}
"""


def render_html(validation: DealerValidation) -> str:
    v = validation
    e = html.escape
    status = "passed" if not v.quarantined else f"{v.quarantined:,} rows quarantined"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Validation {e(v.dataset)} {e(v.dealer_id)} {e(v.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Validation: {e(v.dataset)} of dealer {e(v.dealer_id)}</h1>",
        "<table>",
        f"<tr><th>dealer group</th><td>{e(v.group)}</td></tr>",
        f"<tr><th>run</th><td>{e(v.run_id)}</td></tr>",
        f"<tr><th>rows</th><td class=n>{v.rows:,}</td></tr>",
        f"<tr><th>passed</th><td class=n>{v.good_rows:,}</td></tr>",
        f"<tr><th>quarantined</th><td class=n>{v.quarantined:,} ({v.bad_fraction * 100:.2f}%)</td></tr>",
        f"<tr><th>result</th><td>{e(status)}</td></tr>",
        f"<tr><th>suite</th><td>{e(str(v.report.get('suite', '')))} (Great Expectations)</td></tr>",
        "</table>",
        "<h2>Rules</h2>",
        "<table><tr><th>rule</th><th>checks</th><th>expectation</th><th>failed rows</th><th>examples</th></tr>",
    ]
    for r in v.report.get("rules", []):
        cls = ' class="fail"' if r["failed"] else ""
        examples = "<br>".join(e(x) for x in r["examples"])
        out.append(
            f"<tr{cls}><td>{e(r['rule'])}</td><td>{e(r['description'])}</td><td>{e(r['expectation'])}</td>"
            f"<td class=n>{r['failed']:,}</td><td>{examples}</td></tr>"
        )
    out.append("</table>")
    if v.quarantined:
        shown = min(v.quarantined, QUARANTINE_PREVIEW_ROWS)
        out.append(
            f"<h2>Quarantined rows (first {shown:,} of {v.quarantined:,}; all are in quarantine.parquet "
            "and the warehouse table <code>quarantine</code>)</h2>"
        )
        out.append("<table><tr><th>row</th><th>rules</th><th>raw values</th></tr>")
        head = v.quarantine.head(QUARANTINE_PREVIEW_ROWS)
        for row_number, rules, row_json in zip(head["row_number"], head["rules"], head["row_json"], strict=True):
            out.append(
                f"<tr><td class=n>{int(row_number)}</td><td>{e(rules.replace(';', '; '))}</td>"
                f"<td><code>{e(row_json)}</code></td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write_report(validation: DealerValidation, path: str | LandingPath) -> LandingPath:
    """Write the static HTML report; `path` is the file or the dealer's run directory (a local
    path, or a landing path in object storage).

    Returns the file's path (the task log should print it). Atomic, deterministic.
    """
    if isinstance(path, str):
        path = Path(path)
    if path.suffix.lower() != ".html":
        path = path / REPORT_NAME
    return write_text(render_html(validation), path)
