"""Local simulators of vendor APIs, for tests, the demo and ``hub sandbox start VENDOR``.

They are simulators, not vendors: each follows its vendor's documented shapes (auth,
pagination, rate limits, error codes, callback signatures) on 127.0.0.1 and is seeded with
generated data. Importing :mod:`hub.sandbox.vendors` registers every one of them.
"""

from hub.sandbox.base import SIMULATORS, Faults, RateLimit, Request, Response, Simulator, route

__all__ = ["SIMULATORS", "Faults", "RateLimit", "Request", "Response", "Simulator", "route"]
