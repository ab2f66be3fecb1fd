"""Fuzz tests run a bounded number of examples. Locally each run draws new ones (and
hypothesis replays past failures); under CI (CI=true) they are derandomized, so a red
build reproduces exactly and a green one is not a matter of luck."""

from __future__ import annotations

import os

DERANDOMIZE = os.environ.get("CI", "").lower() in ("1", "true")
