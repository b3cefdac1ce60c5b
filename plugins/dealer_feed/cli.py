"""`dealer-feed`: the data engineers' command line (also `python -m dealer_feed`).

Every subcommand exits non-zero on failure with one clear line on stderr. Expected
errors (bad config, unreachable service, missing grant, refused run) never print a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dealer_feed.config import GroupConfig, airflow_defaults, find_group
from dealer_feed_tools.simulator.world import DEMO_WORLD

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Error types that deserve one line, not a traceback (imported lazily: cheap --help)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from dealer_feed.contract.errors import DealerFeedError

    return (DealerFeedError, FileNotFoundError, AirflowNotFoundException)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if type(exc).__name__ == "AirflowNotFoundException":
        first += " — define it (e.g. AIRFLOW_CONN_<ID> or `airflow connections add`); see README, 'Airflow connections it reads'"
    return first


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dealer-feed-etl")
    except PackageNotFoundError:  # run from a checkout with plugins/ on the path, not installed
        return "unknown (not installed)"


def _logs_to_stderr() -> None:
    """Point the log handlers Airflow installed on the root logger at stderr: stdout carries
    only a command's result (the check table, a run's step lines), so it can be piped or diffed.
    Importing the SDK first makes Airflow install its handlers now, not later under a step."""
    import airflow.sdk  # noqa: F401

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def cmd_simulator(args: argparse.Namespace) -> int:
    from dealer_feed_tools.simulator.server import serve_forever

    serve_forever(args.world, host=args.host, port=args.port)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from dealer_feed.airflow_edge.hooks import OpenTrackHook
    from dealer_feed.opentrack.onboarding import check_group, format_table, verdict

    _logs_to_stderr()
    group = find_group(args.group)
    client = OpenTrackHook(args.conn_id or group.connections.opentrack).client()
    rows = check_group(group, client, args.as_of)
    print(format_table(rows))
    problem = verdict(group.group, rows)
    if problem:
        print(f"dealer-feed check: {problem}", file=sys.stderr)
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from dealer_feed.airflow_edge.hooks import warehouse_engine
    from dealer_feed.warehouse import make_engine
    from dealer_feed.warehouse.migrations import apply

    _logs_to_stderr()
    engine = make_engine(args.url) if args.url else warehouse_engine(args.conn_id)
    applied = apply(engine)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none (up to date)'}")
    return 0


def _engine(args: argparse.Namespace, group: GroupConfig) -> Engine:
    """--url when given, else the group's warehouse connection (as the DAG's tasks use)."""
    from dealer_feed.airflow_edge.hooks import warehouse_engine
    from dealer_feed.warehouse import make_engine

    return make_engine(args.url) if args.url else warehouse_engine(group.connections.warehouse)


def cmd_run(args: argparse.Namespace) -> int:
    from dealer_feed.runner import run_group

    _logs_to_stderr()
    group = find_group(args.group)
    outcome = run_group(group, args.at, _engine(args, group), dealers=args.dealers or (),
                        force_guards=args.force_guards)
    if outcome.failed_dealers:
        print(f"dealer-feed run: {len(outcome.failed_dealers)} dealer(s) failed: "
              f"{', '.join(outcome.failed_dealers)}; the others loaded ({outcome.load['status']}). "
              f"{' | '.join(outcome.failures)}", file=sys.stderr)
        return 1
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from dealer_feed.runner import replay_group

    _logs_to_stderr()
    group = find_group(args.group)
    replay_group(group, _engine(args, group), start=args.start, force_guards=args.force_guards)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dealer_feed_tools.demo import run_demo

    return run_demo(world=args.world, days=args.days, first=args.first)


def cmd_airflow(args: argparse.Namespace) -> int:
    from dealer_feed_tools.local_airflow import run_local_airflow

    return run_local_airflow(port=args.port, host=args.host, world=args.world)


def _parse_date(text: str) -> date:
    return date.fromisoformat(text)


def _parse_time(text: str) -> datetime:
    """A feed time as typed (ISO 8601): aware UTC from here on; a naive value means UTC."""
    from dealer_feed.contract.identity import as_utc

    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-23T06:00)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dealer-feed", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("simulator", help="serve the OpenTrack simulator until interrupted")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--world", type=Path, default=DEMO_WORLD, help="world YAML file (default: the demo world)")
    p.set_defaults(func=cmd_simulator)

    p = sub.add_parser("check", help="onboarding check: each dealer x OpenTrack method the group needs")
    p.add_argument("group", help="dealer group name (include/dealer_groups/GROUP.yaml)")
    p.add_argument("--conn-id", help="Airflow connection id (default: the group's opentrack connection)")
    p.add_argument("--as-of", type=_parse_date, default=datetime.now(timezone.utc).date(), help="run date (YYYY-MM-DD)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("migrate", help="apply warehouse migrations (safe to repeat)")
    p.add_argument("--url", help="SQLAlchemy URL (default: the Airflow connection)")
    p.add_argument("--conn-id", default="dealer_feed_warehouse", help="Airflow connection id of the warehouse")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("run", help="run a group's steps for one feed time without Airflow "
                       "(migrate, extract, validate, transform, load)")
    p.add_argument("group", help="dealer group name (include/dealer_groups/GROUP.yaml)")
    p.add_argument("--at", type=_parse_time, required=True,
                   help="ISO 8601, naive means UTC; the run processes the latest feed time of the group's schedule "
                        "at or before T (as a manual Airflow run with logical date T does), printed first")
    p.add_argument("--dealers", nargs="+", metavar="ID", help="limit the run to these dealer ids (default: all)")
    p.add_argument("--force-guards", action="store_true",
                   help="load past the empty-feed and mass-close guards (only after checking the data)")
    p.add_argument("--url", help="warehouse SQLAlchemy URL (default: the group's warehouse connection)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", help="re-apply the group's landed runs from their landing files, in feed-time order")
    p.add_argument("group", help="dealer group name (include/dealer_groups/GROUP.yaml)")
    p.add_argument("--from", dest="start", type=_parse_time, metavar="T",
                   help="first feed time to re-apply, ISO 8601 (default: every landed run after the warehouse's "
                        "last applied one); refused when the warehouse has runs at or after T")
    p.add_argument("--url", help="target warehouse SQLAlchemy URL, e.g. a new empty one (default: the group's "
                   "warehouse connection)")
    p.add_argument("--force-guards", action="store_true",
                   help="apply past the mass-close guard (for runs that were loaded with force_guards)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="run the demo group's DAG end to end against the simulator")
    p.add_argument("--world", type=Path, default=DEMO_WORLD, help="simulator world YAML (default: the demo world)")
    p.add_argument("--days", type=int, default=2, help="number of consecutive daily runs")
    p.add_argument("--first", type=_parse_time, default=datetime(2026, 11, 23, 6, tzinfo=timezone.utc),
                   help="logical date of the first run (UTC)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("airflow", help="Airflow UI locally (airflow standalone) with the DAGs and the simulator")
    p.add_argument("--port", type=int, default=None, help="api-server port (default: $DEALER_FEED_AIRFLOW_PORT, "
                   "else 8080 when free, else a free port)")
    p.add_argument("--host", default="127.0.0.1", help="api-server address (default: 127.0.0.1)")
    p.add_argument("--world", type=Path, default=DEMO_WORLD, help="simulator world YAML (default: the demo world)")
    p.set_defaults(func=cmd_airflow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    airflow_defaults()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, _expected_errors()):
            print(f"dealer-feed {args.command}: {_one_line(exc)}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
