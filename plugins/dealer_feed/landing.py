"""The landing area: where each run's files live, and how they are written and read.

Layout (one directory, or object-key prefix, per group / dataset / dealer / run, so a run's
files can be found, compared and deleted by path alone):

    {root}/{group}/{dataset}/{dealer_id}/run={YYYYmmddTHHMMSSZ}/raw.parquet
                                                              /good.parquet
                                                              /quarantine.parquet
                                                              /status.json
                                                              /report.html
    {root}/{group}/runs/run={...}/changes/*.parquet, summary.json

Where the root is: `DEALER_FEED_LANDING_URL` (the one setting), a local directory (default:
`$DEALER_FEED_DATA_DIR/landing`, else data/landing; `file://` URLs too) or object storage (any
fsspec scheme: `s3://bucket/prefix`, `gs://...`) reached through the Airflow connection named by
`DEALER_FEED_LANDING_CONN_ID` (default `dealer_feed_landing`). Airflow's edge turns the URL into
a path (airflow_edge.hooks.landing_root: pathlib.Path, or Airflow's ObjectStoragePath); this
module stays free of Airflow and types the root on `LandingPath`, the few pathlib-like operations
both kinds have. Every landing operation (exists, list, read, write, delete) goes through the
functions below, so no other module cares which store it is, and a store's failures become
typed errors here (LandingFileError for a file, LandingStoreError for the store).

Every write is atomic: no reader, nor a rerun, ever sees half a file (_put says how, per store).
Parquet is written with fixed options and no wall-clock metadata, so rewriting the same rows
gives the same bytes, on disk and in object storage alike.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from dealer_feed.config import PROJECT_ROOT
from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import parse_run_key, run_key

if TYPE_CHECKING:
    import pyarrow as pa

DATA_DIR_ENV = "DEALER_FEED_DATA_DIR"
LANDING_URL_ENV = "DEALER_FEED_LANDING_URL"
LANDING_CONN_ID_ENV = "DEALER_FEED_LANDING_CONN_ID"
DEFAULT_LANDING_CONN_ID = "dealer_feed_landing"
LOCAL_SCHEMES = ("", "file", "local")
"""URL schemes of a local landing root (no scheme: a plain path)."""


class LandingPath(Protocol):
    """What the landing area needs of a path: pathlib.Path (local) and Airflow's ObjectStoragePath
    (a universal_pathlib UPath: s3://, gs://, ...) both have these, so the layout functions and
    the steps build paths the same way whatever the store."""

    @property
    def name(self) -> str: ...
    @property
    def suffix(self) -> str: ...
    @property
    def parent(self) -> LandingPath: ...
    def __truediv__(self, key: str) -> LandingPath: ...
    def with_name(self, name: str) -> LandingPath: ...
    def exists(self) -> bool: ...
    def is_dir(self) -> bool: ...
    def glob(self, pattern: str) -> Iterable[LandingPath]: ...
    def read_bytes(self) -> bytes: ...
    def open(self, mode: str = ...) -> Any: ...
    def unlink(self, missing_ok: bool = ...) -> None: ...


P = TypeVar("P", bound=LandingPath)
R = TypeVar("R")


# --------------------------------------------------------------------------- the setting


def data_dir() -> Path:
    """Project-local data directory (default landing area, embedded warehouse), overridable by env."""
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data")


def landing_url() -> str:
    """The landing root as configured: $DEALER_FEED_LANDING_URL, else the local data/landing."""
    return os.environ.get(LANDING_URL_ENV) or str(data_dir() / "landing")


def landing_conn_id() -> str:
    """The Airflow connection of a non-local landing URL ($DEALER_FEED_LANDING_CONN_ID)."""
    return os.environ.get(LANDING_CONN_ID_ENV) or DEFAULT_LANDING_CONN_ID


def local_path(url: str) -> Path | None:
    """The directory of a local landing URL (a plain path or `file://`), None for object storage."""
    parts = urlsplit(url)
    if parts.scheme not in LOCAL_SCHEMES and not (len(parts.scheme) == 1 and url[1:2] == ":"):  # C:\ on Windows
        return None
    return Path(parts.path if parts.scheme in ("file", "local") else url)


def landing_root() -> Path:
    """The local landing root (the steps' default). An object-storage URL needs its Airflow
    connection, so only the Airflow edge builds that root (airflow_edge.hooks.landing_root)."""
    url = landing_url()
    root = local_path(url)
    if root is None:
        raise LandingStoreError(
            f"landing URL {url} is object storage: its root is built from the Airflow connection "
            f"{landing_conn_id()!r} (airflow_edge.hooks.landing_root), not from a local default",
            fix="pass RunContext(landing=airflow_edge.hooks.landing_root()) (the DAG and dealer-feed commands do)",
        )
    return root


def is_local(path: LandingPath) -> bool:
    """A local file (pathlib.Path) rather than an object in a store (a UPath has `protocol`)."""
    return getattr(path, "protocol", "file") in LOCAL_SCHEMES


def url_of(path: LandingPath) -> str:
    """How a landing path is shown to people: the local path, or `scheme://bucket/key` (Airflow's
    own str() also names the connection id: `s3://conn@bucket/key`)."""
    if is_local(path):
        return str(path)
    return f"{getattr(path, 'protocol')}://{getattr(path, 'path')}"


# --------------------------------------------------------------------------- layout


def landed_run_times(root: LandingPath, group: str) -> list[datetime]:
    """Every feed time the group has landing files for (any dataset / dealer run directory, or a
    group run directory), oldest first: the runs a replay re-applies."""
    dirs = [*_store(root, lambda: [d for d in (root / group).glob("*/*/run=????????T??????Z") if d.is_dir()]),
            *_store(root, lambda: [d for d in (root / group / "runs").glob("run=????????T??????Z") if d.is_dir()])]
    return sorted({parse_run_key(d.name.removeprefix("run=")) for d in dirs})


def dealer_run_dir(root: P, group: str, dataset: str, dealer_id: str, logical_time: datetime) -> P:
    return root / group / dataset / dealer_id / f"run={run_key(logical_time)}"


def group_run_dir(root: P, group: str, logical_time: datetime) -> P:
    return root / group / "runs" / f"run={run_key(logical_time)}"


# --------------------------------------------------------------------------- store operations


def exists(path: LandingPath) -> bool:
    """Is the file (or directory / key prefix) there? A store that cannot be asked is a LandingStoreError."""
    return _store(path, path.exists)


def delete(path: LandingPath) -> None:
    """Remove a landing file if present (a guard's good.parquet: never loaded after it failed)."""
    _store(path, lambda: path.unlink(missing_ok=True))


def _put(path: P, data: bytes) -> P:
    """Write `data` as the file `path`, atomically: no reader ever sees part of it.

    Local: a temporary file in the same directory, then os.replace (a rename, atomic on POSIX),
    so a task killed mid-write leaves at most a stray `.name.*` temp file, never a half file
    that a rerun would trust. Object storage has no rename, and needs none: the whole object
    is sent in one PUT (the bytes are serialised in memory first), and S3 (like GCS and Azure
    Blob) makes an object visible only once its upload completed; a failed or killed upload
    leaves the previous object, or none. (fsspec's pipe_file uses a multipart upload only above
    100 MB, which is also invisible until its completion.)
    """
    if is_local(path):
        local = Path(path)  # type: ignore[arg-type]
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", dir=local.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, local)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
    _store(path, lambda: getattr(path, "fs").pipe_file(getattr(path, "path"), data), writing=True)
    return path


def write_parquet(table: pa.Table, path: P) -> P:
    """Atomically write `table` with deterministic options (same rows, same bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=True, store_schema=True)
    return _put(path, sink.getvalue().to_pybytes())


def write_json(obj: Any, path: P) -> P:
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def write_text(text: str, path: P) -> P:
    return _put(path, text.encode())


class LandingStoreError(DealerFeedError):
    """The landing store itself failed: unreachable (transient: Airflow retries), or it refused
    us (access denied, no such bucket: permanent, `fix` names the Airflow connection)."""

    def __init__(self, message: str, fix: str, transient: bool = False) -> None:
        super().__init__(f"{message}. Fix: {fix}")
        self.fix = fix
        self.transient = transient


def _error_code(exc: BaseException) -> str:
    """The store's error code behind a translated error (s3fs keeps botocore's ClientError as
    __cause__), e.g. NoSuchBucket, AccessDenied; '' when there is none."""
    response = getattr(exc.__cause__, "response", None) or getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""


def _store_error(path: LandingPath, exc: BaseException, writing: bool) -> LandingStoreError | None:
    """A store failure as a typed error, or None when `exc` is about the file (or not the store's).

    Told apart by type, without importing a store library: fsspec stores raise PermissionError
    for refused credentials / access, FileNotFoundError (code NoSuchBucket) for a missing bucket;
    an unreachable endpoint is a ConnectionError / TimeoutError, or botocore's / aiohttp's own
    connection errors (not OSError subclasses)."""
    conn_id = getattr(path, "conn_id", None) or landing_conn_id()
    where = url_of(path)
    code = _error_code(exc)
    if isinstance(exc, PermissionError) or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return LandingStoreError(
            f"landing store refused access to {where} ({code or type(exc).__name__})",
            fix=f"check the Airflow connection {conn_id!r} (access key id in login, secret key in password, extra "
                "endpoint_url / region_name) and that its identity may s3:ListBucket, s3:GetObject, s3:PutObject "
                "and s3:DeleteObject on the landing prefix; then clear the failed task",
        )
    if code == "NoSuchBucket" or (isinstance(exc, FileNotFoundError) and "bucket does not exist" in str(exc)):
        return LandingStoreError(
            f"landing store has no bucket for {where}",
            fix=f"create the bucket, or correct ${LANDING_URL_ENV} / the endpoint in the Airflow connection "
                f"{conn_id!r}; then clear the failed task",
        )
    if isinstance(exc, FileNotFoundError):
        return None
    module = type(exc).__module__.split(".")[0]
    if isinstance(exc, (ConnectionError, TimeoutError)) or module in ("botocore", "aiobotocore", "aiohttp"):
        return LandingStoreError(
            f"landing store unreachable at {where} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            fix=f"check the store is up and the endpoint_url of the Airflow connection {conn_id!r}; the task retries",
            transient=True,
        )
    if writing and isinstance(exc, OSError):
        return LandingStoreError(f"landing store could not write {where} ({type(exc).__name__}: {exc})",
                                 fix="check the store's logs and free space; the task retries", transient=True)
    return None


def _store(path: LandingPath, call: Callable[[], R], writing: bool = False) -> R:
    """`call()` on the store of `path`, its store failures raised as LandingStoreError (never a
    bare botocore traceback). Local files keep their OSErrors (a full disk is not a bug to hide)."""
    if is_local(path):
        return call()
    try:
        return call()
    except Exception as exc:
        error = _store_error(path, exc, writing)
        if error is None:
            raise
        raise error from None


class LandingFileError(DealerFeedError):
    """A landing file a step needs is missing or unreadable. Permanent: retrying reads the
    same bytes; `fix` names the task to clear (the one that writes the file). The message
    names the file as people find it: a local path or the object's URL."""

    transient = False

    def __init__(self, path: LandingPath, problem: str) -> None:
        self.path = path
        self.url = url_of(path)
        self.fix = fix_for(path)
        super().__init__(f"landing file {self.url} {problem}. Fix: {self.fix}")


def _run_of(directory: LandingPath) -> str:
    return directory.name.removeprefix("run=")


def fix_for(path: LandingPath) -> str:
    """Which task rewrites `path` (read from the landing layout), as on-call's fix line."""
    if path.parent.name == "changes" or (path.name == "summary.json" and path.parent.parent.name == "runs"):
        run_dir = path.parent.parent if path.parent.name == "changes" else path.parent
        return (f"clear the `transform` task of run {_run_of(run_dir)} with downstream (it rewrites the "
                "run's change files and summary.json, then the load applies them)")
    run_dir = path.parent
    dealer, dataset = run_dir.parent.name, run_dir.parent.parent.name
    if path.name == "raw.parquet":
        return (f"delete {url_of(path)} and clear the `extract` batch of dealer {dealer} for run "
                f"{_run_of(run_dir)} with downstream (it fetches the {dataset} feed again for the run's feed time, "
                "then `validate` checks it)")
    return (f"clear the `validate` task of run {_run_of(run_dir)} with downstream (it rewrites dealer {dealer}'s "
            f"{dataset} files from the raw file)")


def _get(path: LandingPath) -> bytes:
    """The file's bytes (one GET on object storage); LandingFileError when missing."""
    try:
        return _store(path, path.read_bytes)
    except FileNotFoundError:
        raise LandingFileError(path, "is missing") from None
    except OSError as exc:
        raise LandingFileError(path, f"is unreadable ({type(exc).__name__}: {exc})") from None


def read_json(path: LandingPath) -> Any:
    """A landing JSON file (status.json, summary.json); LandingFileError when missing or corrupt."""
    data = _get(path)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise LandingFileError(path, f"is unreadable ({type(exc).__name__}: {exc})") from None


def read_parquet(path: LandingPath, columns: list[str] | None = None) -> pa.Table:
    """A landing Parquet file (or some of its columns); LandingFileError when missing or corrupt
    (never a bare FileNotFoundError or "ArrowInvalid: magic bytes" traceback). A local file is
    read in place (Arrow maps it); an object is fetched whole in one GET, then decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return _decoded(path, lambda: pq.read_table(path if is_local(path) else pa.BufferReader(_get(path)),
                                                columns=columns))


def parquet_rows(path: LandingPath) -> int:
    """A landing Parquet file's row count, from its footer alone (an object: a few ranged GETs,
    not the file). Why not read_parquet: a rerun's extract only counts a reused raw file, and
    `pq.read_table` would import pandas into the extract task."""
    import pyarrow.parquet as pq

    def footer() -> int:
        if is_local(path):
            return pq.read_metadata(path).num_rows
        with path.open("rb") as source:
            return pq.read_metadata(source).num_rows

    return _decoded(path, lambda: _store(path, footer))


def _decoded(path: LandingPath, decode: Callable[[], R]) -> R:
    """`decode()` of a Parquet file, a missing or undecodable file raised as LandingFileError."""
    import pyarrow as pa

    try:
        return decode()
    except FileNotFoundError:
        raise LandingFileError(path, "is missing") from None
    except (OSError, pa.ArrowException) as exc:
        raise LandingFileError(path, f"is not a readable Parquet file ({type(exc).__name__}: {exc})") from None
