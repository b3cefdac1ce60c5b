"""`dealer-feed` commands as separate OS processes that start at the same moment, cheaply.

A fresh `dealer-feed run` spends most of its ~10 s of CPU importing Airflow, pandas,
SQLAlchemy and GX before its first step: ten of them on a 2-core CI runner are staggered
by their imports (so they hardly overlap where it matters, in the warehouse) and slow.
This server (`python tests/forked_cli.py [LANDING]`) imports the CLI and what its steps
import once, then forks one child per command of a batch. Each child is its own OS process
(its own database connections and locks, its own stdout/stderr files, its own environment)
and runs `dealer_feed.cli.main(argv)`, which is what the `dealer-feed` console script calls.
A batch's children wait on one pipe and are released together once all are forked.

Warm-up: GX's first validation in a process costs ~4 s of CPU (its registries), later ones
~0.2 s. Given a landing area, the server validates one run's raw files of it in memory
(writing nothing) before the first fork, so the children skip that one-time cost too. What
a child skips is only a fresh process's one-time work; everything that reads or writes the
landing area, the warehouse or the simulator happens in the child.

Protocol: one JSON line per batch on stdin, a list of {"argv", "env", "stdout", "stderr"};
the answer is one JSON line, the children's exit statuses in the same order. EOF: exit.
`ForkedCli` is the test side.
"""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dealer_feed_tools import processes

PRELOAD = ("dealer_feed.cli", "dealer_feed.runner", "dealer_feed.pipeline", "dealer_feed.validation.core",
           "dealer_feed.rules.engine", "dealer_feed.warehouse.load", "dealer_feed.warehouse.migrations",
           "dealer_feed.warehouse.reads", "dealer_feed.airflow_edge.hooks", "airflow.sdk",
           "airflow.sdk.definitions.connection", "airflow.sdk.execution_time.supervisor", "great_expectations",
           "pyarrow.parquet", "pyarrow.dataset", "psycopg")
"""What `dealer-feed run` imports (modules only: nothing is configured or connected before the fork)."""


@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class ForkedCli:
    """The server as a spawned process (dealer_feed_tools.processes: stopped with its children by close())."""

    def __init__(self, workdir: Path, env: dict[str, str], warm: Path | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.count = 0
        with (workdir / "server.log").open("w") as log:
            self.server = processes.spawn([sys.executable, __file__, *([str(warm)] if warm else [])], env=env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)

    def batch(self, *commands: tuple[list[str], dict[str, str]], timeout: float = 180) -> list[Result]:
        """Run the commands (argv, extra environment) as children started together; their results in order."""
        jobs = []
        for argv, env in commands:
            self.count += 1
            stem = self.workdir / f"{self.count:03d}"
            jobs.append({"argv": argv, "env": env, "stdout": f"{stem}.out", "stderr": f"{stem}.err"})
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(json.dumps(jobs) + "\n")
        self.server.stdin.flush()
        ready, _, _ = select.select([self.server.stdout], [], [], timeout)
        line = self.server.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"forked_cli: no answer within {timeout} s for {[j['argv'] for j in jobs]}")
        return [Result(job["argv"], code, Path(job["stdout"]).read_text(), Path(job["stderr"]).read_text())
                for job, code in zip(jobs, json.loads(line))]

    def close(self) -> None:
        if self.server.stdin is not None and not self.server.stdin.closed:
            self.server.stdin.close()  # EOF: the server exits
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        processes.stop(self.server, grace=5)


# --------------------------------------------------------------------------- server side


def _child(job: dict, release: int, answers: int) -> None:
    """In the forked child: wait for the release, run the CLI with the job's argv, exit with its status."""
    code = 1
    try:
        os.close(answers)
        os.environ.update(job["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        os.read(release, 1)  # returns at EOF: the server closed the write end after the last fork
        from dealer_feed.cli import main

        code = main(job["argv"])
    except SystemExit as exc:  # argparse's exit
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a traceback is what a user would see: keep it in stderr
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def warm_up(landing: Path) -> None:
    """Validate the raw files of the landing area's first run, per group, in memory."""
    from dealer_feed.config import find_group
    from dealer_feed.contract.identity import parse_run_key
    from dealer_feed.landing import read_parquet
    from dealer_feed.validation import validate_batches

    for group in sorted(p for p in landing.iterdir() if p.is_dir()):
        raws = sorted(group.glob("*/*/run=*/raw.parquet"), key=lambda path: path.parent.name)
        for raw in [r for r in raws if r.parent.name == raws[0].parent.name]:
            dataset, dealer_id = raw.parts[-4:-2]
            validate_batches(dataset, {dealer_id: read_parquet(raw)}, group=find_group(group.name),
                             logical_time=parse_run_key(raw.parent.name.removeprefix("run=")))


def serve(warm: Path | None) -> None:
    import importlib

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever else prints (import-time log lines) goes to the server's log, not into the answers
    for name in PRELOAD:
        importlib.import_module(name)
    if warm is not None:
        warm_up(warm)
    gc.freeze()  # the children's collections skip what was loaded here (no copy-on-write of it all)
    for line in sys.stdin:
        jobs = json.loads(line)
        release, go = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pids = []
        for job in jobs:
            pid = os.fork()
            if pid == 0:
                os.close(go)
                _child(job, release, answers.fileno())
            pids.append(pid)
        os.close(release)
        os.close(go)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        answers.write(json.dumps(codes) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
