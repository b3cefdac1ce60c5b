"""OpenTrack simulator: a stand-in for DealerTrack's OpenTrack SOAP service.

It lets the pipeline, its tests, the demo and the benchmarks run without the vendor's
service: one HTTP server speaks SOAP 1.1 and 1.2 on the ASMX endpoints the real service
exposes, serves WSDLs a standard toolkit can load, enforces credentials and per-method
grants, injects faults on demand, and serves inventories that are deterministic
functions of (seed, dealer, date). Protocol and conventions: docs/OPENTRACK.md.

This package imports only its own modules (ARCHITECTURE.md): it is the other side of the
wire, so it must not share code with the client it is meant to test.
"""

from dealer_feed_tools.simulator.server import SimulatorHandle, serve_forever, start_background
from dealer_feed_tools.simulator.world import World, load_world

__all__ = ["SimulatorHandle", "World", "load_world", "serve_forever", "start_background"]
