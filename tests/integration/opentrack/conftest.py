"""Fixtures: one real simulator over HTTP on a free loopback port per module, fast clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ot_support import PASSWORD, USERNAME, WORLD

from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed_tools.simulator import SimulatorHandle, World, start_background


@pytest.fixture(scope="module")
def world() -> World:
    return World.model_validate(WORLD)


@pytest.fixture(scope="module")
def simulator(world: World) -> Iterator[SimulatorHandle]:
    handle = start_background(world)
    yield handle
    handle.stop()


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    """The module's simulator with no injected faults and an empty request log."""
    simulator.reset()
    return simulator


@pytest.fixture
def make_client(sim: SimulatorHandle) -> Iterator:
    """Factory for clients of the simulator with fast retries (10 ms backoff, 0.5 s timeout)."""
    clients: list[OpenTrackClient] = []

    def make(**options) -> OpenTrackClient:
        settings = dict(username=USERNAME, password=PASSWORD, timeout=0.5, max_attempts=3, max_wait_seconds=10,
                        backoff_seconds=0.01, max_backoff_seconds=0.05, requests_per_second=500) | options
        client = OpenTrackClient(sim.url, settings.pop("username"), settings.pop("password"), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client) -> OpenTrackClient:
    return make_client()
