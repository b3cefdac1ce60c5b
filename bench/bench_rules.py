"""Benchmark: the rules engine on a large dealer group (not a test).

    PYTHONPATH=plugins .venv/bin/python bench/bench_rules.py [--repeat 3]

1. 200,000 feed vehicles over 300 dealers against 1,000,000 SRs of history (~200,000
   active), from `bench/generate.py` (deterministic). Wall time from the input frames to
   `Changes` and peak memory: tracemalloc peak of the call (Python + numpy + pandas
   allocations; Arrow buffers are counted via pyarrow's allocator) and the RSS high-water
   mark delta (ru_maxrss). Targets: <= 2 s, <= 2 GiB.
2. Rows/s of the engine vs the one-vehicle-at-a-time reference (tests/unit/rules/reference.py)
   on a 20,000-vehicle scenario, each including its own data preparation. Target >= 10x.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "bench"), str(ROOT / "tests" / "unit" / "rules")]

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from generate import make_scenario  # noqa: E402
from machine import describe  # noqa: E402
from reference import canonical, reference_changes  # noqa: E402

from dealer_feed.rules.engine import compute_changes  # noqa: E402

GiB = 1024**3


def kwargs(sc):
    return dict(extracted_dealers=sc.extracted_dealers, settings=sc.settings, group=sc.group,
                logical_time=sc.logical_time)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vehicles", type=int, default=200_000)
    ap.add_argument("--srs", type=int, default=1_000_000)
    ap.add_argument("--active", type=int, default=200_000)
    ap.add_argument("--dealers", type=int, default=300)
    args = ap.parse_args()
    print(describe(pandas=pd.__version__, pyarrow=pa.__version__))

    t = time.perf_counter()
    sc = make_scenario(args.vehicles, args.dealers, args.srs, args.active)
    print(f"generate: {time.perf_counter() - t:.2f}s  feed={len(sc.feed):,} rows, srs={len(sc.srs):,} rows "
          f"({int((sc.srs['status'] == 'active').sum()):,} active), dealers={args.dealers}")

    # Memory first (a fresh process high-water mark): RSS delta of one call, tracemalloc peak
    # (numpy/pandas/Python allocations), Arrow pool growth (Arrow buffers bypass tracemalloc).
    pool = pa.default_memory_pool()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    arrow0 = pool.bytes_allocated()
    tracemalloc.start()
    ch = compute_changes(sc.feed, sc.srs, **kwargs(sc))
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    arrow_peak = pool.max_memory() - arrow0
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        ch = compute_changes(sc.feed, sc.srs, **kwargs(sc))
        times.append(time.perf_counter() - t)
    tot = ch.counts["totals"]
    print(f"engine full ({args.repeat} warm runs): best {min(times):.3f}s  median {statistics.median(times):.3f}s  (target <= 2 s)  "
          f"-> {len(sc.feed) / min(times):,.0f} vehicles/s")
    print(f"  memory (first call): ru_maxrss delta {max(rss1 - rss0, 0) / GiB:.3f} GiB, tracemalloc peak "
          f"{py_peak / GiB:.3f} GiB, arrow pool peak over start <= {max(arrow_peak, 0) / GiB:.3f} GiB; "
          f"process ru_maxrss incl. inputs {rss1 / GiB:.3f} GiB (target <= 2 GiB)")
    print(f"  output: service_requests={len(ch.service_requests):,} events={len(ch.events):,} "
          f"outcomes={len(ch.outcomes):,}")
    print(f"  totals: {tot}")

    small = make_scenario(20_000, 30, 100_000, 20_000, seed=11)
    t = time.perf_counter()
    a = compute_changes(small.feed, small.srs, **kwargs(small))
    te = time.perf_counter() - t
    t = time.perf_counter()
    b = reference_changes(small.feed, small.srs, **kwargs(small))
    tr = time.perf_counter() - t
    same = canonical(a) == canonical(b)
    n = len(small.feed)
    print(f"20k subset ({n:,} vehicles, {len(small.srs):,} SRs): engine {te:.3f}s = {n / te:,.0f} rows/s; "
          f"reference {tr:.3f}s = {n / tr:,.0f} rows/s; ratio {tr / te:.1f}x (target >= 10x); identical={same}")


if __name__ == "__main__":
    main()
