"""`python -m dealer_feed_tools.simulator --host 127.0.0.1 --port 0 --world FILE`: serve until interrupted.

The first stdout line is the base URL the simulator listens on (flushed), so a script can
start it with port 0 and read where it went.
"""

import argparse
from pathlib import Path

from dealer_feed_tools.simulator.server import serve_forever
from dealer_feed_tools.simulator.world import DEMO_WORLD


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dealer_feed_tools.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--world", type=Path, default=DEMO_WORLD, help="world YAML file (default: the demo world)")
    args = parser.parse_args()
    serve_forever(args.world, host=args.host, port=args.port)


main()
