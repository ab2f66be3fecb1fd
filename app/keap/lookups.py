"""Ids Keap needs that a webhook does not carry: a company's id for its name, and the user
an email is sent on behalf of. Each is found once and kept for the life of the process.

The cache is only an optimisation: a company is always looked up before it is created,
so a retry after a create whose answer was lost finds it instead of creating a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from app.keap.errors import KeapAuthError, KeapPermanentError, KeapTransientError
from app.keap.exchange import Reply
from app.keap.models import CallContext
from app.keap.replies import read_json

T = TypeVar("T")

MAX_CACHED_COMPANIES = 10_000

NO_USER_ID = (
    "Keap's email-template send and notes need the id of the Keap user they are made on "
    "behalf of, and "
    "the credential did not say whose it is: set RELAY_KEAP_USER_ID"
)


class KeapCaller(Protocol):
    """The client's one way of making a call (gate, credential, report, classification)."""

    def __call__(
        self,
        operation: str,
        method: str,
        path: str,
        read: Callable[[str, Reply], T],
        *,
        json_body: Any = None,
        ctx: CallContext | None = None,
    ) -> Awaitable[T]: ...


class KeapLookups:
    def __init__(self, call: KeapCaller, *, user_id: int | None = None) -> None:
        self._call = call
        self._user_id = user_id  # RELAY_KEAP_USER_ID, else discovered on first use
        self._companies: dict[str, int] = {}
        self._user_lock = asyncio.Lock()
        self._company_lock = asyncio.Lock()

    async def sender_user_id(self, ctx: CallContext | None = None) -> int:
        """The configured user id, else the credential's own user (REST v2 userinfo)."""
        if self._user_id is None:
            async with self._user_lock:
                if self._user_id is None:
                    self._user_id = await self._discover_user_id(ctx)
        return self._user_id

    async def company_id(self, name: str, ctx: CallContext | None = None) -> int:
        """The id of the Keap company with this name, created when there is none."""
        name = " ".join(name.split())
        key = name.casefold()
        if key in self._companies:
            return self._companies[key]
        # One lookup-or-create at a time in this process: two events of a new company
        # would otherwise both miss it and both create it.
        async with self._company_lock:
            if key not in self._companies:
                found = await self._find_company(name, ctx)
                company_id = found if found is not None else await self._create(name, ctx)
                if len(self._companies) >= MAX_CACHED_COMPANIES:
                    self._companies.clear()  # a cache, not a record: lookups start over
                self._companies[key] = company_id
        return self._companies[key]

    async def _discover_user_id(self, ctx: CallContext | None) -> int:
        operation = "user.discover"
        try:
            info = await self._call(
                operation, "GET", "/rest/v2/oauth/connect/userinfo", read_json, ctx=ctx
            )
        except KeapAuthError as err:
            if err.token_rejected:  # the credential itself was refused: pause as usual
                raise
            # A 403 here says this key may not read its user (a service account key acts
            # for no user): no retry can help until the setting names one.
            raise KeapPermanentError(operation, f"{NO_USER_ID} ({err.detail})") from None
        except KeapPermanentError as err:  # e.g. a 404: this app offers no userinfo
            raise KeapPermanentError(operation, f"{NO_USER_ID} ({err.detail})") from None
        except KeapTransientError as err:
            # Asking is harmless to repeat: a lost answer must not count as an email that
            # may have gone out (the step it serves must not run twice).
            err.maybe_applied = False
            raise
        user_id = _positive_id(info.get("sub") if isinstance(info, dict) else None)
        if user_id is None:
            raise KeapPermanentError(operation, NO_USER_ID)
        return user_id

    async def _find_company(self, name: str, ctx: CallContext | None) -> int | None:
        payload = await self._call("company.find", "GET", _company_search(name), read_json, ctx=ctx)
        companies = payload.get("companies") if isinstance(payload, dict) else None
        for company in companies if isinstance(companies, list) else []:
            if not isinstance(company, dict):
                continue
            same_name = _company_key(str(company.get("company_name", ""))) == _company_key(name)
            company_id = _positive_id(company.get("id"))
            if same_name and company_id is not None:
                return company_id
        return None

    async def _create(self, name: str, ctx: CallContext | None) -> int:
        operation = "company.create"
        payload = await self._call(
            operation,
            "POST",
            "/rest/v2/companies",
            read_json,
            json_body={"company_name": name},
            ctx=ctx,
        )
        company_id = _positive_id(payload.get("id") if isinstance(payload, dict) else None)
        if company_id is None:
            raise KeapPermanentError(operation, "Keap created the company but sent no id")
        return company_id


def _company_search(name: str) -> str:
    """The v2 companies list that holds ``name`` if Keap has it (listCompanies in
    keap-sdk sdks/v2/swagger.yml). Its filter joins clauses with ``;``, so a name with a
    ``;`` in it cannot go into ``company_name==`` (exact match): the companies whose name
    starts with the part before it (``name==Prefix*``, the spec's prefix wildcard) are
    listed instead, as many as a page holds (1 000), and the name compared here."""
    if ";" not in name:
        query = quote(f"company_name=={name}", safe="")
        return f"/rest/v2/companies?filter={query}&page_size=50"
    prefix = name.split(";", 1)[0].split("*", 1)[0]  # a wildcard only at the end
    query = quote(f"name=={prefix}*", safe="")
    return f"/rest/v2/companies?filter={query}&page_size=1000"


def _company_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _positive_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None
