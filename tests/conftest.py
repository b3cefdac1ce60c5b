"""Shared test set-up: a throwaway AIRFLOW_HOME and data directory for the whole session.

The environment is set at import time, before any test imports Airflow, so Airflow reads
its configuration from the temporary home and the tests leave nothing behind outside
temporary directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import ROOT
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="dealer-feed-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "DEALER_FEED_DATA_DIR": str(_SESSION_DIR / "data"),
    }
)
for leaked in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
    del os.environ[leaked]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session (about 3 s)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
