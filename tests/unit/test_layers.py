"""The import layers (issue 12): the import-linter contracts in pyproject.toml hold, and
importing the DAG factory and the pipeline (what a worker imports) does not import the
development tools (dealer_feed_tools: simulator, demo, local launcher) nor, for the pipeline,
Airflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "plugins"), "PATH": str(Path(sys.executable).parent),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "GX_ANALYTICS_ENABLED": "False"}
    import os

    env |= {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_HOME") or k == "HOME"}
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_import_contracts_hold():
    result = _run(str(Path(sys.executable).with_name("lint-imports")))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


def test_workers_do_not_import_the_tools_and_the_pipeline_not_airflow():
    probe = (
        "import sys\n"
        "import dealer_feed.pipeline, dealer_feed.runner\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'airflow'], 'pipeline imported airflow'\n"
        "import dealer_feed.airflow_edge.dag_factory\n"
        "tools = sorted(m for m in sys.modules if m.startswith('dealer_feed_tools'))\n"
        "assert not tools, tools\n"
        "assert 'airflow.sdk' in sys.modules\n"
        "print('ok')\n"
    )
    result = _run(sys.executable, "-c", probe)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr[-3000:]
