"""A thread-safe rate limiter shared by every call of one client.

Why spacing rather than a bursty token bucket: OpenTrack counts requests per vendor per
second (one public client throttles to about 30/s), and extract threads for many
dealers start at the same moment; evenly spaced start times keep every one-second window
under the limit without relying on the service's throttle answers.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """At most `per_second` acquisitions per second, evenly spaced, across threads."""

    def __init__(self, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.interval = 1.0 / per_second
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def acquire(self) -> float:
        """Block until this caller's slot; returns the slot (a time.monotonic() instant).
        Slots are at least `interval` apart whatever the threads' wake-up jitter."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return slot
