"""The landing area: where each run's files live, and how they are written.

Layout (one directory per group / dataset / dealer / run, so a run's files can be found,
compared and deleted by path alone):

    {root}/{group}/{dataset}/{dealer_id}/run={YYYYmmddTHHMMSSZ}/raw.parquet
                                                              /good.parquet
                                                              /quarantine.parquet
                                                              /status.json
                                                              /report.html
    {root}/{group}/runs/run={...}/changes/*.parquet, summary.json

Every write is atomic (temporary file + rename), so a task killed mid-write never leaves
a half file that a rerun would trust. Parquet is written with fixed options and no
wall-clock metadata, so rewriting the same rows gives the same bytes.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealer_feed.config import PROJECT_ROOT
from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import parse_run_key, run_key

if TYPE_CHECKING:
    import pyarrow as pa

DATA_DIR_ENV = "DEALER_FEED_DATA_DIR"


def data_dir() -> Path:
    """Project-local data directory (landing area, embedded warehouse), overridable by env."""
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data")


def landing_root() -> Path:
    return data_dir() / "landing"


def landed_run_times(root: Path, group: str) -> list[datetime]:
    """Every feed time the group has landing files for (any dataset / dealer run directory, or a
    group run directory), oldest first: the runs a replay re-applies."""
    keys = {d.name.removeprefix("run=") for d in (root / group).glob("*/*/run=????????T??????Z") if d.is_dir()}
    keys |= {d.name.removeprefix("run=") for d in (root / group / "runs").glob("run=????????T??????Z") if d.is_dir()}
    return sorted(parse_run_key(k) for k in keys)


def dealer_run_dir(root: Path, group: str, dataset: str, dealer_id: str, logical_time: datetime) -> Path:
    return root / group / dataset / dealer_id / f"run={run_key(logical_time)}"


def group_run_dir(root: Path, group: str, logical_time: datetime) -> Path:
    return root / group / "runs" / f"run={run_key(logical_time)}"


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Atomically write `table` with deterministic options (same rows, same bytes)."""
    import pyarrow.parquet as pq

    return _atomic_write(
        path, lambda tmp: pq.write_table(table, tmp, compression="zstd", write_statistics=True, store_schema=True)
    )


def write_json(obj: Any, path: Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return _atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_text(text: str, path: Path) -> Path:
    return _atomic_write(path, lambda tmp: Path(tmp).write_text(text))


class LandingFileError(DealerFeedError):
    """A landing file a step needs is missing or unreadable. Permanent: retrying reads the
    same bytes; `fix` names the task to clear (the one that writes the file)."""

    transient = False

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.fix = fix_for(self.path)
        super().__init__(f"landing file {self.path} {problem}. Fix: {self.fix}")


def _run_of(directory: Path) -> str:
    return directory.name.removeprefix("run=")


def fix_for(path: Path) -> str:
    """Which task rewrites `path` (read from the landing layout), as on-call's fix line."""
    path = Path(path)
    if path.parent.name == "changes" or (path.name == "summary.json" and path.parent.parent.name == "runs"):
        run_dir = path.parent.parent if path.parent.name == "changes" else path.parent
        return (f"clear the `transform` task of run {_run_of(run_dir)} with downstream (it rewrites the "
                "run's change files and summary.json, then the load applies them)")
    run_dir = path.parent
    dealer, dataset = run_dir.parent.name, run_dir.parent.parent.name
    if path.name == "raw.parquet":
        return (f"delete {path} and clear the `extract_validate` batch of dealer {dealer} for run "
                f"{_run_of(run_dir)} with downstream (it fetches the {dataset} feed again for the run's feed time)")
    return (f"clear the `extract_validate` batch of dealer {dealer} for run {_run_of(run_dir)} with downstream "
            f"(it rewrites the {dataset} files from the raw file)")


def read_json(path: Path) -> Any:
    """A landing JSON file (status.json, summary.json); LandingFileError when missing or corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LandingFileError(path, "is missing") from None
    except (OSError, ValueError) as exc:
        raise LandingFileError(path, f"is unreadable ({type(exc).__name__}: {exc})") from None


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A landing Parquet file (or some of its columns); LandingFileError when missing or corrupt
    (never a bare FileNotFoundError or "ArrowInvalid: magic bytes" traceback)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise LandingFileError(path, "is missing") from None
    except (OSError, pa.ArrowException) as exc:
        raise LandingFileError(path, f"is not a readable Parquet file ({type(exc).__name__}: {exc})") from None
