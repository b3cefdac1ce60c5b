"""`python -m dealer_feed_tools.simulator` serves until interrupted and prints its URL first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ot_support import RUN

from dealer_feed_tools import processes
from dealer_feed.config import load_group
from dealer_feed.opentrack.client import OpenTrackClient

ROOT = Path(__file__).resolve().parents[3]


def test_module_entry_point_prints_url_and_serves_demo_world():
    env = os.environ | {"PYTHONPATH": str(ROOT / "plugins")}
    process = processes.spawn(
        [sys.executable, "-m", "dealer_feed_tools.simulator", "--host", "127.0.0.1", "--port", "0",
         "--world", str(ROOT / "include" / "simulator" / "demo_world.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        demo = load_group(ROOT / "include" / "dealer_groups" / "demo.yaml")
        with OpenTrackClient(url, "dealer-feed-vendor", "demo-secret", timeout=5) as client:
            assert client.vehicle_inventory(demo.dealers[0], RUN).num_rows > 30
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=10) == 0
        finally:
            processes.stop(process, grace=5)
