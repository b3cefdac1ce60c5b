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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dealer_feed.config import PROJECT_ROOT

if TYPE_CHECKING:
    import pyarrow as pa

DATA_DIR_ENV = "DEALER_FEED_DATA_DIR"


def data_dir() -> Path:
    """Project-local data directory (landing area, embedded warehouse), overridable by env."""
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data")


def landing_root() -> Path:
    return data_dir() / "landing"


def as_utc(moment: datetime) -> datetime:
    """Normalise a logical time to an aware UTC datetime (naive input is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def run_key(logical_time: datetime) -> str:
    """Path- and id-safe spelling of a run's logical time, e.g. 20261124T060000Z."""
    return as_utc(logical_time).strftime("%Y%m%dT%H%M%SZ")


def run_id(group: str, logical_time: datetime) -> str:
    """Warehouse run id: the group and the run's logical time (not Airflow's run id)."""
    return f"{group}:{run_key(logical_time)}"


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


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
