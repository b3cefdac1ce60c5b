"""Plain helpers shared by tests (import from here, never `from conftest import ...`:
several conftest.py files exist and which one Python calls `conftest` depends on order)."""

from __future__ import annotations

import socket

from dealer_feed.config import PROJECT_ROOT as ROOT

__all__ = ["ROOT", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
