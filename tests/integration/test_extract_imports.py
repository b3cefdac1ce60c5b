"""An extract task holds the HTTP client, the parser and Arrow only: no pandas, GX or SQLAlchemy.

Why it matters: an extract task runs once per dealer batch, side by side with its siblings, so
every module it imports is paid once per batch (issue 13's peak RSS target of an extract task;
pandas alone is 43 MB, pulled in by pyarrow's Python converters: dealer_feed.opentrack.arrow).
The demo group (vehicles, parts, repair orders with lines) is extracted twice in a fresh Python
process against the real simulator over HTTP (the second time the raw files are reused and only
counted), and the process reports which heavy modules it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD

HEAVY = ("pandas", "great_expectations", "sqlalchemy")

CHILD = textwrap.dedent("""
    import json, sys
    from datetime import datetime, timezone
    from pathlib import Path
    from dealer_feed import pipeline
    from dealer_feed.config import find_group
    from dealer_feed.opentrack.client import OpenTrackClient

    url, landing = sys.argv[1], Path(sys.argv[2])
    group = find_group("demo")
    ctx = pipeline.RunContext(group=group, logical_time=datetime(2026, 11, 20, 6, tzinfo=timezone.utc), landing=landing)
    runs = []
    for _ in range(2):
        with OpenTrackClient(url, "dealer-feed-vendor", "demo-secret") as client:
            runs.append(pipeline.extract_batch(ctx, group.dealer_ids, None, client))
    print(json.dumps({"runs": runs, "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,))


@pytest.fixture(scope="module")
def sim_url():
    with start_background(DEMO_WORLD) as sim:
        yield sim.url


def test_extract_imports_no_pandas_gx_or_sqlalchemy(sim_url: str, tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "plugins"),
                                                      os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", CHILD, sim_url, str(tmp_path / "landing")], capture_output=True,
                          text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    first, rerun = report["runs"]
    datasets = {s["dataset"] for s in first if s["status"] == "extracted"}
    assert datasets == {"vehicles", "parts", "repair_orders"}, first
    assert sum(s["rows"] for s in first) > 100
    assert rerun == first, "the rerun reuses the raw files and counts the same rows"
    assert report["heavy"] == [], f"the extract imported {report['heavy']}"
