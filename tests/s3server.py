"""A real S3 protocol server for tests: moto's server mode (`moto_server`) on loopback.

    from s3server import get_server
    server = get_server()                      # the process's server (started on first use)
    server.create_bucket("landing-x")
    env = server.connection_env()              # AIRFLOW_CONN_DEALER_FEED_LANDING (JSON form)
    server.objects("landing-x", "prefix/")     # {key: bytes}, read with boto3 (not with the code under test)

One server per test process (like tests/pgserver.py): started with
dealer_feed_tools.processes.spawn (own session, owner token), polled until it answers, and
stopped with its whole tree by stop_server() (tests/conftest.py calls it before the
session's leftover-process check) or at exit. Tests isolate themselves by bucket. One server
per process also keeps Airflow's per-process filesystem cache (airflow.sdk.io.store, keyed by
protocol and connection id) pointing at a live endpoint.

The connection's secret access key is SECRET, a unique marker: moto accepts any credentials,
so a test can assert the marker never reaches a log, an output, a landing object or XCom.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dealer_feed_tools import processes
from support import SharedServer, free_port

ACCESS_KEY = "AKIADEALERFEEDTEST01"
SECRET = f"s3secret{secrets.token_hex(10)}"
REGION = "us-east-1"
CONN_ID = "dealer_feed_landing"


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen
    log_path: Path
    _stopped: bool = field(default=False)

    def client(self) -> Any:
        """A boto3 S3 client of the server (the tests' own view, independent of the code under test)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET, region_name=REGION)

    def create_bucket(self, bucket: str) -> str:
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The landing connection's fields (conn type `aws`): keys in login / password, the
        endpoint and region in extra."""
        return {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET,
                "extra": {"endpoint_url": self.endpoint, "region_name": REGION} | extra}

    def connection_env(self, conn_id: str = CONN_ID) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection())}

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        client = self.client()
        return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in self.keys(bucket, prefix)}

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as response:
                return response.status < 500
        except OSError:
            return False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        processes.stop(self.process, grace=5.0)
        shutil.rmtree(self.log_path.parent, ignore_errors=True)


def start(timeout: float = 30.0, authenticate: bool = False) -> S3Server:
    """Start `moto_server -H 127.0.0.1 -p PORT` (next to this interpreter) and wait until it answers.

    `authenticate`: the server checks every request's credentials, as AWS does (moto's
    INITIAL_NO_AUTH_ACTION_COUNT=0), so unknown keys get AWS's own InvalidAccessKeyId answer."""
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="moto-")) / "moto.log"
    env = dict(os.environ) | ({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if authenticate else {})
    with log_path.open("ab") as log:
        process = processes.spawn([binary, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while not server.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"moto_server did not answer on port {port} within {timeout:.0f}s:\n{tail}")
        time.sleep(0.1)
    return server


_SHARED = SharedServer(start)
get_server = _SHARED.get
"""The process's shared server, started on first use and stopped at exit (or by stop_server())."""
stop_server = _SHARED.stop

