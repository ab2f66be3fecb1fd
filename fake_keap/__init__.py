"""A fake Infusionsoft (Keap) API on loopback, for end-to-end tests, benchmarks and sandboxes.

It follows the wire contract of the relay's Keap client (REST v1, XML-RPC, OAuth2 token
rotation, throttle headers), records what a real account would hold, and injects faults.
"""

from fake_keap.app import create_app
from fake_keap.behaviour import FakeBehaviour
from fake_keap.server import FakeKeapServer
from fake_keap.state import FakeKeapState

__all__ = ["FakeBehaviour", "FakeKeapServer", "FakeKeapState", "create_app"]
