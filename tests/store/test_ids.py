"""Event ids: the documented form, time order, and fresh randomness for every id."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from app.store import ids
from app.store.ids import new_event_id

_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def reference_id(now: float, random: bytes) -> str:
    """The definition the fast encoder must match: base32 of 48 time bits + 80 random
    bits, re-lettered to Crockford's alphabet, first 26 letters."""
    millis = int(now * 1000) & ((1 << 48) - 1)
    raw = millis.to_bytes(6, "big") + random
    return "evt_" + base64.b32encode(raw)[:26].decode().translate(_CROCKFORD)


@pytest.mark.parametrize("now", [0.0, 1.0, 1_764_000_000.123, 2**47 / 1000, 9e12])
def test_id_matches_the_reference_encoding(now: float, monkeypatch: Any) -> None:
    for random in (bytes(10), b"\xff" * 10, bytes(range(10)), b"\x80" + bytes(9)):
        monkeypatch.setattr(ids, "_random", _Fixed(random))
        assert new_event_id(now) == reference_id(now, random)


def test_ids_sort_by_time_and_never_repeat() -> None:
    made = [new_event_id(1_764_000_000 + i / 1000) for i in range(2000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(r"evt_[0-9A-HJKMNP-TV-Z]{26}", i) for i in made)
    same_instant = {new_event_id(1_764_000_000.0) for _ in range(3 * ids._POOL_IDS)}
    assert len(same_instant) == 3 * ids._POOL_IDS  # across refills of the random pool


class _Fixed:
    def __init__(self, random: bytes) -> None:
        self.value = int.from_bytes(random, "big")

    def take(self) -> int:
        return self.value
