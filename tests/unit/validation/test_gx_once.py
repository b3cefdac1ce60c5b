"""Great Expectations costs seconds to import and to build its context: a process pays that once.

Measured in a fresh Python process (in this one, earlier tests have already built the
context): importing the pipeline and the validation package imports no GX; then two
batches go through `pipeline.validate_landed` (their raw files already landed, so
nothing is fetched), as `dealer-feed run` runs a group's batches in one process. Every
GX data context created is counted at its base class's constructor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support import ROOT

SCRIPT = r"""
import json, sys
from pathlib import Path

from dealer_feed import pipeline
import dealer_feed.validation
gx_at_import = sorted(m for m in sys.modules if m.split(".")[0] == "great_expectations")

from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

created = []
constructor = AbstractDataContext.__init__


def counting(self, *args, **kwargs):
    created.append(type(self).__name__)
    constructor(self, *args, **kwargs)


AbstractDataContext.__init__ = counting

from dealer_feed.landing import write_parquet
from validation_helpers import T, make_group, row, table

group = make_group()
ctx = pipeline.RunContext(group, T, landing=Path(sys.argv[1]))
for n, dealer_id in enumerate(group.dealer_ids):
    rows = [row(10 * n + i, dealer_id=dealer_id, company_number=dealer_id.split("_")[1]) for i in range(5)]
    write_parquet(table(rows), ctx.dealer_dir("vehicles", dealer_id) / "raw.parquet")
batches = [group.dealer_ids[:1], group.dealer_ids[1:]]
statuses = [pipeline.validate_landed(ctx, list(ids), {}) for ids in batches]
print(json.dumps({
    "gx_at_import": gx_at_import,
    "contexts": created,
    "runtime_builds": dealer_feed.validation.gx_runtime.cache_info().misses,
    "statuses": [[(s["dealer_id"], s["status"], s["good"]) for s in batch] for batch in statuses],
}))
"""


def test_two_batches_in_one_process_build_one_gx_context(tmp_path):
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tests" / "unit" / "validation"),
                                                       str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["gx_at_import"] == []
    assert seen["statuses"] == [[["ZE_ZE7", "ok", 5]], [["ZE_ZE8", "ok", 5], ["ZE_ZE9", "ok", 5]]]
    assert seen["contexts"] == ["EphemeralDataContext"]
    assert seen["runtime_builds"] == 1
