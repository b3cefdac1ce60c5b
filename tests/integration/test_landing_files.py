"""Missing change files (issue 14, defect 4): every change file the transform's summary lists
must be there or the load fails (never "applied" without the parts or repair orders), until
the transform is cleared. Real parts: the simulator over HTTP, a real SQLite file.

Every other missing or corrupt landing file (a LandingFileError whose fix line names the task
to clear, never a bare FileNotFoundError / "ArrowInvalid: magic bytes" traceback) is a case of
the bad-input catalogue, tests/integration/test_bad_input.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, load_world
from run_steps import Steps

RUN = "20261120T060000Z"


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with start_background(load_world(DEMO_WORLD)) as handle:
        yield handle.url


@pytest.fixture
def steps(sim_url, tmp_path) -> Iterator[Steps]:
    steps = Steps(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "landing", sim_url)
    yield steps
    steps.close()


def _runs(steps: Steps) -> list[tuple]:
    with steps.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT run_id FROM etl_runs"))]


@pytest.mark.parametrize("name", ["parts.parquet", "repair_orders.parquet", "events.parquet"])
def test_missing_change_file_fails_the_load_until_the_transform_is_cleared(steps, name):
    steps.extract(0)
    summary = steps.transform(0)
    (steps.ctx(0).run_dir / "changes" / name).unlink()
    with pytest.raises(Exception) as err:  # noqa: PT011 - today's code loads without the file: no raise
        steps.load(0)
    assert type(err.value).__name__ == "LandingFileError", repr(err.value)
    assert name in summary["change_files"]  # the transform's summary lists every file it wrote
    assert f"changes/{name} is missing" in str(err.value)
    assert err.value.fix.startswith(f"clear the `transform` task of run {RUN}")
    assert err.value.transient is False and _runs(steps) == []
    steps.transform(0)  # the fix line's advice
    assert steps.load(0)["status"] == "applied"
