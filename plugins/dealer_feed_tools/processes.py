"""Start child processes so that they, and everything they start, can always be stopped.

Airflow does not stay in one process: `airflow standalone` starts a scheduler, an
api-server (uvicorn workers), a dag-processor, a triggerer and executor workers; pg_ctl
detaches PostgreSQL into its own session; some of them create their own sessions or
process groups. Killing the process we started, or even its process group, misses them,
and they keep running re-parented to init (issue 16). So every process this project
starts from a test, a benchmark, `dealer-feed airflow` or the demo goes through `spawn()`:

- it runs in its own session (start_new_session: Ctrl-C in the terminal does not reach it
  half-way, and its group can be signalled as a whole);
- its environment carries an owner token in DEALER_FEED_OWNERS (a comma separated list,
  so nested owners add theirs: the pytest session, then `dealer-feed airflow`, then...),
  inherited by every descendant however far it detaches; /proc/PID/environ then tells
  whose a process is;
- `stop()` signals the whole tree: the process, its process group, its descendants and
  every process carrying its token; SIGTERM (or the first signal asked for), then SIGKILL
  after a bounded grace period to whatever is left, including processes started during
  the shutdown.

A process still registered at interpreter exit is stopped by an atexit hook. For an owner
that dies without any cleanup (SIGKILL, os._exit as pytest-timeout's thread method does),
`start_reaper(token)` starts a small watchdog (`python -m dealer_feed_tools.processes reap
TOKEN`) that waits for its owner's end (a pipe closing) and then stops every process still
carrying the token.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

OWNERS_ENV = "DEALER_FEED_OWNERS"
"""Environment variable listing the owner tokens of a process (comma separated)."""

DEFAULT_GRACE_S = 20.0
KILL_WAIT_S = 5.0

_RUNNING: dict[int, tuple[subprocess.Popen, str]] = {}
"""Processes started by spawn() and not stopped yet: pid -> (Popen, token)."""


def new_token(label: str) -> str:
    """A token unique to one owner (label, our pid, random), safe inside a comma list."""
    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:40]
    return f"{clean}-{os.getpid()}-{secrets.token_hex(4)}"


def owned_env(token: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: ours) with `token` added to the owner list its processes inherit."""
    result = dict(os.environ if env is None else env)
    owners = [t for t in result.get(OWNERS_ENV, "").split(",") if t]
    result[OWNERS_ENV] = ",".join([*owners, token])
    return result


def claim(token: str) -> None:
    """Add `token` to this process's own environment, so everything it starts from now on
    (with or without spawn(), e.g. a subprocess.run of the CLI) is found as ours."""
    os.environ[OWNERS_ENV] = owned_env(token)[OWNERS_ENV]


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default (Python then installs KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(argv: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
          token: str | None = None, **popen_kwargs) -> subprocess.Popen:
    """subprocess.Popen in a new session with an owner token; stop it with stop().

    The child starts with SIGINT at its default: an ignored SIGINT is inherited across exec
    (nohup, a pytest-xdist worker), and a service that ignores Ctrl-C cannot be stopped the
    way its users stop it."""
    argv = [os.fspath(a) for a in argv]
    token = token or new_token(Path(argv[0]).name)
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    popen_kwargs.setdefault("preexec_fn", _default_sigint)
    process = subprocess.Popen(argv, env=owned_env(token, env), start_new_session=True, **popen_kwargs)
    _RUNNING[process.pid] = (process, token)
    return process


# ---------------------------------------------------------------------- finding


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (an exited child not reaped yet); False once gone."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _environ(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return {}


def _under(value: str | None, directory: str) -> bool:
    base = directory.rstrip("/")
    return bool(value) and (value == base or value.startswith(base + "/"))


def find(*, tokens: Iterable[str] = (), roots: Iterable[int] = (), sessions: Iterable[int] = (),
         env_dirs: Mapping[str, Iterable[Path | str]] | None = None,
         exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """Live processes (never this one) that carry one of `tokens`, descend from one of
    `roots` (the roots included), belong to one of the `sessions` (spawn() makes every
    process a session leader), or whose environment variable KEY (as exec'd:
    /proc/PID/environ) is one of `env_dirs[KEY]` or a path below it.

    A matched session leader brings its whole session: processes that call setproctitle
    (Airflow's executor workers, serve-logs, api-server, Celery) overwrite the memory
    /proc/PID/environ shows, so their token can no longer be read; they still share the
    session of the process that started them."""
    tokens, wanted_sessions = set(tokens), set(sessions)
    env_dirs = {k: [str(d) for d in v] for k, v in (env_dirs or {}).items()}
    skip = {os.getpid(), *exclude}
    found: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            top = psutil.Process(root)
            for proc in [top, *top.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    if tokens or wanted_sessions or env_dirs:
        by_session: dict[int, list[psutil.Process]] = {}
        for proc in psutil.process_iter():
            try:
                sid = os.getsid(proc.pid)
            except OSError:
                continue
            by_session.setdefault(sid, []).append(proc)
            if proc.pid in found:
                continue
            env = _environ(proc) if tokens or env_dirs else {}
            if (sid in wanted_sessions or tokens & set(env.get(OWNERS_ENV, "").split(","))
                    or any(_under(env.get(k), d) for k, ds in env_dirs.items() for d in ds)):
                found[proc.pid] = proc
        own_session = os.getsid(0)
        for sid, members in by_session.items():
            if sid != own_session and sid in found:  # the session's leader is ours
                found.update((p.pid, p) for p in members)
    return [p for pid, p in sorted(found.items()) if pid not in skip and is_alive(p)]


def describe(proc: psutil.Process) -> str:
    """`pid N: command line` (or the name when the command line cannot be read)."""
    try:
        cmd = " ".join(proc.cmdline()) or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        cmd = "(gone)"
    return f"pid {proc.pid}: {cmd[:300]}"


# ---------------------------------------------------------------------- stopping


def _send(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)  # psutil checks the pid was not reused
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            pass


def _wait_gone(procs: Sequence[psutil.Process], timeout: float, own: Sequence[subprocess.Popen] = ()) -> None:
    """Wait (bounded) until every one of `procs` has exited; our own Popen children are
    reaped through Popen so their return codes stay readable."""
    mine = {p.pid for p in own}
    deadline = time.monotonic() + timeout
    while True:
        pending = [p for p in own if p.poll() is None]
        left = [p for p in procs if p.pid not in mine and is_alive(p)]
        if (not left and not pending) or time.monotonic() >= deadline:
            return
        time.sleep(0.1)


def terminate(select: Callable[[], list[psutil.Process]], grace: float = DEFAULT_GRACE_S,
              first_signal: int = signal.SIGTERM, own: Sequence[subprocess.Popen] = ()) -> list[psutil.Process]:
    """Send `first_signal` to every process `select()` returns, wait up to `grace` seconds,
    then SIGKILL whatever `select()` returns then (new ones included), also when the
    wait is interrupted. Returns the processes that needed SIGKILL (a clean shutdown: [])."""
    stubborn: list[psutil.Process] = []
    try:
        targets = select()
        if targets:
            _send(targets, first_signal)
            _wait_gone(targets, grace, own)
    finally:  # a second Ctrl-C (or a test timeout) during the grace period kills at once
        stubborn = select()
        if stubborn:
            _send(stubborn, signal.SIGKILL)
            _wait_gone(stubborn, KILL_WAIT_S, own)
    return stubborn


def tree_of(*processes: subprocess.Popen) -> Callable[[], list[psutil.Process]]:
    """A selector of everything the spawn()ed `processes` run: each one while it runs,
    its descendants, its session, every process carrying its owner token."""
    tokens = [_RUNNING[p.pid][1] for p in processes if p.pid in _RUNNING]

    def select() -> list[psutil.Process]:
        running = [p.pid for p in processes if p.poll() is None]
        return find(tokens=tokens, roots=running, sessions=[p.pid for p in processes])

    return select


def stop(*processes: subprocess.Popen, grace: float = DEFAULT_GRACE_S,
         first_signal: int = signal.SIGTERM) -> list[psutil.Process]:
    """Stop `processes` (started by spawn()) and their whole trees together: `first_signal`
    to all, then SIGKILL after `grace` seconds to whatever is left. Safe to call twice.
    Returns the processes that needed SIGKILL."""
    try:
        return terminate(tree_of(*processes), grace, first_signal, own=processes)
    finally:
        for process in processes:
            _RUNNING.pop(process.pid, None)
            try:
                process.wait(timeout=KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def stop_all(grace: float = DEFAULT_GRACE_S) -> None:
    """Stop every process spawn() started that is not stopped yet."""
    stop(*(process for process, _token in _RUNNING.values()), grace=grace)


@atexit.register
def _stop_at_exit() -> None:
    if _RUNNING:
        stop_all(grace=10.0)


def stop_on_sigterm() -> Any:
    """Make SIGTERM behave like Ctrl-C (KeyboardInterrupt), so `finally` blocks and context
    managers stop what we started; Python's default SIGTERM action would just end us.
    Returns the previous handler."""
    def interrupt(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    return signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def guarded(label: str) -> Iterator[str]:
    """Own everything a whole program (a benchmark, `dealer-feed airflow`, the demo) starts
    from here on, by any means: a new owner token goes into our environment, so every
    process started inherits it; SIGTERM acts as Ctrl-C; on leaving (normally, by an
    error, Ctrl-C or SIGTERM) every process still carrying the token is stopped, and if
    we are killed outright the reaper does it. Yields the token."""
    token = new_token(label)
    previous_owners = os.environ.get(OWNERS_ENV)
    claim(token)
    previous_handler = stop_on_sigterm()
    reaper = start_reaper(token)
    try:
        yield token
    finally:
        try:
            terminate(lambda: find(tokens=[token], exclude=[reaper.pid]))
        finally:
            stop_reaper(reaper)
            signal.signal(signal.SIGTERM, previous_handler)
            if previous_owners is None:
                os.environ.pop(OWNERS_ENV, None)
            else:
                os.environ[OWNERS_ENV] = previous_owners


# ---------------------------------------------------------------------- the reaper


def start_reaper(token: str) -> subprocess.Popen:
    """A watchdog that stops every process carrying `token` once we are gone, however we
    end: it blocks reading a pipe only we hold open. Stop it with stop_reaper()."""
    env = {k: v for k, v in os.environ.items() if k != OWNERS_ENV}  # not one of its own targets
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[1]),
                                                    env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "dealer_feed_tools.processes", "reap", token], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)


def stop_reaper(reaper: subprocess.Popen) -> None:
    """Let the reaper do its final sweep (close its pipe) and wait for it (bounded)."""
    if reaper.stdin is not None:
        reaper.stdin.close()
    try:
        reaper.wait(timeout=DEFAULT_GRACE_S + KILL_WAIT_S + 5)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


def _reap(token: str) -> int:
    """Block until the owner's pipe closes, then stop everything that carries `token`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the owner; we clean up after it
    while sys.stdin.buffer.read(65536):
        pass
    for proc in find(tokens=[token]):
        print(f"dealer-feed reaper: stopping {describe(proc)} (its owner ended without stopping it)",
              file=sys.stderr, flush=True)
    terminate(lambda: find(tokens=[token]), grace=10.0)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "reap":
        raise SystemExit(_reap(sys.argv[2]))
    raise SystemExit("usage: python -m dealer_feed_tools.processes reap TOKEN")
