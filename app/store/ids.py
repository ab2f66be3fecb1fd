"""Event ids: time-ordered, unguessable strings (``evt_`` + a 26-character ULID)."""

from __future__ import annotations

import os
import threading
import time

# Crockford's base32 alphabet keeps ASCII order, so ids sort by time as strings (the
# encoding is most-significant bits first).
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two letters
_RANDOM_BYTES = 10  # 80 random bits an id
_POOL_IDS = 256  # ids' worth of randomness fetched from the OS at a time


class _RandomPool(threading.local):
    """os.urandom drawn 256 ids at a time (docs/performance.md, "Register"); every byte
    is still the kernel's CSPRNG output, used once."""

    def __init__(self) -> None:
        self.pool = b""
        self.at = 0

    def take(self) -> int:
        if self.at >= len(self.pool):
            self.pool = os.urandom(_RANDOM_BYTES * _POOL_IDS)
            self.at = 0
        start = self.at
        self.at = start + _RANDOM_BYTES
        return int.from_bytes(self.pool[start : self.at], "big")


_random = _RandomPool()


def new_event_id(now: float | None = None) -> str:
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    # 48 bits of time, 80 random, shifted left by two to fill 26 letters of 5 bits (130
    # bits): the same letters base64.b32encode gave for those 16 bytes, cut to 26.
    n = ((millis << 80) | _random.take()) << 2
    p = _PAIRS
    return (
        "evt_"
        + p[n >> 120]
        + p[(n >> 110) & 1023]
        + p[(n >> 100) & 1023]
        + p[(n >> 90) & 1023]
        + p[(n >> 80) & 1023]
        + p[(n >> 70) & 1023]
        + p[(n >> 60) & 1023]
        + p[(n >> 50) & 1023]
        + p[(n >> 40) & 1023]
        + p[(n >> 30) & 1023]
        + p[(n >> 20) & 1023]
        + p[(n >> 10) & 1023]
        + p[n & 1023]
    )
