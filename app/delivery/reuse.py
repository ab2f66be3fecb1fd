"""Contact reuse: an upsert whose mapped fields are the same as the last one made for that
email within RELAY_CONTACT_REUSE_MINUTES reuses its contact id instead of calling Keap.

Carts send several events per purchase for one person (ThriveCart: the order and each
item), each of which would upsert the same, unchanged contact. The last upsert per email
is kept in the database (table ``contact_reuse``), so every replica shares it; it holds
SHA-256 digests of the email and of the fields, never the address or a name. An upsert
with other fields for that email replaces the entry (so a reuse always repeats the very
last upsert made), and a contact deleted in Keap meanwhile is noticed by the next call
that names it: the entry is dropped, the contact upserted again, and the call made again
with the new id (``app.delivery.event``, through ``renew``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import orjson

from app.delivery.actions import KeapActions, contact_fields
from app.keap.client import CallContext
from app.keap.errors import KeapError, KeapPermanentError
from app.store.base import Store

# v1 ``POST /contacts/{id}/tags`` reports a missing contact per tag with this status
# (KeapArchive/infusionsoft-sdk-nodejs, docs/Entrylongstring.md); other calls answer 404.
_CONTACT_NOT_FOUND = "CONTACT_NOT_FOUND"


def reuse_keys(params: dict[str, Any]) -> tuple[str, str]:
    """(email key, fields key) of an upsert step's mapped fields: digests, so the table
    holds no personal data."""
    email = str(params.get("email", "")).strip().lower()
    email_key = hashlib.sha256(email.encode()).hexdigest()
    fields = orjson.dumps(params, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return email_key, hashlib.sha256(fields).hexdigest()


def says_contact_missing(error: KeapError) -> bool:
    """Keap's answer may mean the contact id no longer exists (a 404 also comes for a wrong
    sequence or tag id: delivery re-upserts, and only a different id confirms it)."""
    if not isinstance(error, KeapPermanentError):
        return False
    return error.status_code == 404 or _CONTACT_NOT_FOUND in error.detail


class ContactReuse:
    def __init__(
        self, store: Store, window_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.window = window_seconds
        self.clock = clock

    async def upsert(
        self, client: KeapActions, params: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any]:
        """The upsert step's result: a reused id (``reused: true``) or a new upsert's."""
        email_key, fields_key = reuse_keys(params)
        found = await self.store.reused_contact(email_key, fields_key, self.clock() - self.window)
        if found is not None:
            return {"contact_id": found, "reused": True}
        contact_id = await client.upsert_contact(contact_fields(params), ctx=ctx)
        await self.store.remember_contact(
            email_key, fields_key, contact_id, self.clock(), self.window
        )
        return {"contact_id": contact_id}

    async def renew(
        self, client: KeapActions, params: dict[str, Any], stale_id: int, ctx: CallContext
    ) -> int:
        """Drop the entry naming ``stale_id`` and upsert the contact again; its id."""
        email_key, _ = reuse_keys(params)
        await self.store.forget_contact(email_key, stale_id)
        result = await self.upsert(client, params, ctx)
        contact_id: int = result["contact_id"]
        return contact_id
