"""Missing or corrupt landing files (issue 14, defect 4 and "also wrong today").

Every change file the transform's summary lists must be there or the load fails (never
"applied" without the parts or repair orders), and a missing or corrupt landing file is
a LandingFileError whose fix line names the task to clear, never a bare
FileNotFoundError / "ArrowInvalid: magic bytes" traceback. Real parts: the simulator over
HTTP, a real SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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


def _corrupt(path: Path) -> None:
    path.write_bytes(b"not parquet or json at all")


def _dealer_file(dataset: str, dealer: str, name: str) -> Callable[[Steps], Path]:
    return lambda s: s.ctx(0).dealer_dir(dataset, dealer) / name


CASES = {
    # file, how it breaks, the step that reads it, words of the fix line
    "good missing": (_dealer_file("vehicles", "ZE_ZE7", "good.parquet"), Path.unlink, "transform",
                     "clear the `extract_validate` batch of dealer ZE_ZE7"),
    "good corrupt": (_dealer_file("vehicles", "ZE_ZE7", "good.parquet"), _corrupt, "transform",
                     "clear the `extract_validate` batch of dealer ZE_ZE7"),
    "quarantine corrupt": (_dealer_file("vehicles", "ZE_ZE9", "quarantine.parquet"), _corrupt, "transform",
                           "clear the `extract_validate` batch of dealer ZE_ZE9"),
    "status corrupt": (_dealer_file("vehicles", "ZE_ZE8", "status.json"), _corrupt, "transform",
                       "clear the `extract_validate` batch of dealer ZE_ZE8"),
    "raw corrupt": (_dealer_file("parts", "ZE_ZE7", "raw.parquet"), _corrupt, "extract",
                    "delete "),
    "summary missing": (lambda s: s.ctx(0).run_dir / "summary.json", Path.unlink, "load",
                        f"clear the `transform` task of run {RUN}"),
    "summary corrupt": (lambda s: s.ctx(0).run_dir / "summary.json", _corrupt, "load",
                        f"clear the `transform` task of run {RUN}"),
    "change file corrupt": (lambda s: s.ctx(0).run_dir / "changes" / "service_requests.parquet", _corrupt, "load",
                            f"clear the `transform` task of run {RUN}"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_missing_or_corrupt_landing_file_is_a_typed_error_with_a_fix_line(steps, case):
    where, breaks, step, fix = CASES[case]
    steps.extract(0)
    if step == "load":
        steps.transform(0)
    path = where(steps)
    assert path.exists()
    breaks(path)
    with pytest.raises(Exception) as err:  # noqa: PT011 - never a bare FileNotFoundError / ArrowInvalid
        getattr(steps, step)(0)
    assert type(err.value).__name__ == "LandingFileError", repr(err.value)
    assert err.value.path == path and str(path) in str(err.value)
    assert fix in err.value.fix and f"Fix: {err.value.fix}" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # one line, not a chained traceback
    assert _runs(steps) == []
