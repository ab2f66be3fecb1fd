"""Event ids: time-ordered, unguessable strings (``evt_`` + a 26-character ULID)."""

from __future__ import annotations

import base64
import os
import time

# Standard base32 re-lettered to Crockford's alphabet, which keeps ASCII order, so ids
# sort by time as strings (the encoding is most-significant bits first).
_TO_CROCKFORD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def new_event_id(now: float | None = None) -> str:
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    raw = millis.to_bytes(6, "big") + os.urandom(10)  # 48 bits of time, 80 random
    return "evt_" + base64.b32encode(raw)[:26].decode().translate(_TO_CROCKFORD)
