"""Runtime state that tests steer and inspect: injected faults, vendor throttling, request log.

Why counted faults ("first N calls"): a retrying client is only testable if the service
fails exactly N times and then answers, so that the test can assert both the success and
the number of attempts (from the request log).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from dealer_feed_tools.simulator.world import FaultRule, Vendor


def inject_bytes(chunks: Iterable[bytes], element: str, payload: bytes) -> Iterator[bytes]:
    """The response chunks with `payload` written right after the first `<element>` tag.

    The `forbidden_bytes` fault: e.g. one NUL in one vehicle's Model, as a DMS with a bad
    value sends it. Streaming: a tag cut between two chunks is found (the last
    len(tag) - 1 bytes of a chunk are held back until the next one).
    """
    tag = f"<{element}>".encode()
    pending = b""
    stream = iter(chunks)
    for chunk in stream:
        data = pending + chunk
        at = data.find(tag)
        if at >= 0:
            cut = at + len(tag)
            yield data[:cut] + payload + data[cut:]
            yield from stream
            return
        keep = max(0, len(data) - (len(tag) - 1))
        yield data[:keep]
        pending = data[keep:]
    yield pending


class FaultBook:
    """Fault rules with their remaining counts; the first matching rule with calls left fires."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[tuple[FaultRule, list[int | None]]] = []
        self.add(rules)

    def add(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self._rules.extend((rule, [rule.times]) for rule in rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, dealer_id: str | None, method: str | None, day: date | None = None) -> FaultRule | None:
        """The fault this call (as of `day`) suffers (consuming one of its calls), or None."""
        with self._lock:
            for rule, left in self._rules:
                if rule.matches(dealer_id, method, day) and (left[0] is None or left[0] > 0):
                    if left[0] is not None:
                        left[0] -= 1
                    return rule
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.model_dump(mode="json", by_alias=True) | {"remaining": left[0]} for rule, left in self._rules]


class VendorThrottle:
    """Sliding one-second window per vendor: more accepted calls than requests_per_second -> throttled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def admit(self, vendor: Vendor) -> bool:
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(vendor.username, deque())
            while calls and calls[0] <= now - 1.0:
                calls.popleft()
            if len(calls) >= vendor.requests_per_second:
                return False
            calls.append(now)
            return True


class RequestLog:
    """Every SOAP call received, in order, without credentials (the admin endpoint serves it).

    An entry is appended when the call arrives and completed when it is answered, so a
    test counting attempts sees a call that is still sleeping in a `slow` fault.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = itertools.count(1)

    def start(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            entry = {"seq": next(self._seq), "at": time.time(), "status": None, "outcome": "pending"} | fields
            self._entries.append(entry)
            return entry

    def finish(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
