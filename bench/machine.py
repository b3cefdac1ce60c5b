"""One line describing the machine a benchmark ran on (every bench script prints it first)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _proc_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def describe(**versions: str) -> str:
    """`machine: nproc=2 cpu='AMD EPYC' mem=23.5 GiB python=3.11.7 x86_64 <name>=<version>...`"""
    cpu = _proc_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    mem_kb = _proc_value("/proc/meminfo", "MemTotal")
    mem = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "?"
    extra = "".join(f" {name}={value}" for name, value in versions.items())
    return f"machine: nproc={os.cpu_count()} cpu={cpu!r} mem={mem} python={platform.python_version()} {platform.machine()}{extra}"
