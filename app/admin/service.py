"""What an operator can ask of the relay, shared by the JSON API and the dashboard:
list and page events, read one, re-queue one or many, and summarise the queue."""

from __future__ import annotations

import base64
import binascii
import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.config.models import RelayConfig
from app.delivery.budget import QuotaBudget, read_budget
from app.domain.events import EVENT_STATUSES, EventFilter, EventRecord, Replanner
from app.errors import BadRequest, NotFound, RelayError
from app.plan.planner import plan_event
from app.plan.replan import replan_event
from app.store.base import Store

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_CURSOR_PREFIX = "seq:"


class ReplayConflict(RelayError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The ``seq`` a cursor wraps: the next page holds only events older than it."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    seq = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not seq.isdigit():
        raise BadRequest("cursor is not one this API handed out: pass next_cursor unchanged")
    return int(seq)


def parse_limit(limit: str | None) -> int:
    if limit is None or limit == "":
        return DEFAULT_PAGE_SIZE
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(limit)


def parse_filter(status: str | None, source: str | None, email: str | None) -> EventFilter:
    """The filter for the given query values; empty values mean 'any'."""
    if status and status not in EVENT_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(EVENT_STATUSES)}")
    return EventFilter(
        status=status or None, source=source or None, email=(email or "").strip() or None
    )


@dataclass(frozen=True)
class EventsPage:
    events: list[EventRecord]
    next_cursor: str | None


async def list_page(
    store: Store, flt: EventFilter, limit: int, before_seq: int | None
) -> EventsPage:
    """One page, newest first; a next cursor only when older matching events exist."""
    records = await store.list_events(flt, limit + 1, before_seq)
    page = records[:limit]
    more = len(records) > limit
    return EventsPage(page, encode_cursor(page[-1].seq) if more and page else None)


def _shown_id(event_id: str) -> str:
    return repr(event_id[:80])


async def load_event(store: Store, event_id: str) -> EventRecord:
    record = await store.get_event(event_id)
    if record is None:
        raise NotFound(f"no event has the id {_shown_id(event_id)}")
    return record


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: every step (``from_start``), also the steps only recorded in dry-run
    (``dry_run_steps``), and first re-plan with this config (``replan``)."""

    from_start: bool = False
    dry_run_steps: bool = False
    replan: RelayConfig | None = None

    @property
    def replanner(self) -> Replanner | None:
        return None if self.replan is None else functools.partial(replan_event, self.replan)


async def replay_event(store: Store, event_id: str, options: ReplayOptions) -> None:
    """Re-queue one event: its unfinished steps, and more as ``options`` say. An ignored
    event only with ``replan``: re-planned, it is queued if a route takes it now."""
    record = await load_event(store, event_id)
    if record.status == "ignored" and options.replan is None:
        raise ReplayConflict(
            f"event {_shown_id(event_id)} was ignored (no route matched it), so it has no "
            "plan to run: replay it with ?replan=true to plan it with the current relay.yaml"
        )
    if await store.requeue(
        event_id,
        from_start=options.from_start,
        now=time.time(),
        dry_run_steps=options.dry_run_steps,
        replan=options.replanner,
    ):
        return
    record = await load_event(store, event_id)  # NotFound if purged meanwhile
    if options.replan is not None:
        document = {"headers": record.headers, "body": record.payload, "query": {}}
        plan = plan_event(
            options.replan,
            record.source,
            record.event_type,
            document,
            received_at=record.received_at,
        )
        if plan.status != "pending":
            left = "it stays ignored" if record.status == "ignored" else "it was left as it was"
            raise ReplayConflict(
                f"the current relay.yaml does not deliver event {_shown_id(event_id)}: "
                f"{plan.error}; {left}"
            )
    raise ReplayConflict(
        f"event {_shown_id(event_id)} is being delivered right now: try again in a moment"
    )


async def replay_matching(
    store: Store,
    status: str | None,
    source: str | None,
    since: float | None,
    options: ReplayOptions,
    *,
    reason: str | None = None,
    routes_json: str | None = None,
) -> int:
    """Re-queue the matching events; ``status`` None (any) only with ``dry_run_steps``,
    ``ignored`` only with ``replan``; ``reason`` and ``routes_json`` narrow it to one
    problem group (DeadGroup)."""
    refuse_ignored_without_replan(status, options)
    flt = EventFilter(
        status=status, source=source or None, since=since, reason=reason, routes_json=routes_json
    )
    return await store.requeue_matching(
        flt,
        time.time(),
        from_start=options.from_start,
        dry_run_steps=options.dry_run_steps,
        replan=options.replanner,
    )


def refuse_ignored_without_replan(status: str | None, options: ReplayOptions) -> None:
    """A replay of many ignored events needs ``replan``: they have no plan to run."""
    if status == "ignored" and options.replan is None:
        raise BadRequest(
            'status ignored needs replan ("replan": true; relay replay --replan): an ignored '
            "event has no plan to run until it is planned again with the current relay.yaml"
        )


def wake_worker(runtime: Any) -> None:
    """Let an in-process worker pick replayed events up now, not at its next poll."""
    wake = getattr(getattr(runtime, "worker", None), "wake", None)
    if callable(wake):
        wake()


@dataclass(frozen=True)
class StatusSummary:
    counts: dict[str, int]
    quota_available: int | None
    throttle_available: int | None
    keap_auth: dict[str, str]
    budget: QuotaBudget | None = None  # calls let through against each ceiling

    @property
    def budget_resets_at(self) -> datetime | None:
        return None if self.budget is None else datetime.fromtimestamp(self.budget.resets_at, UTC)

    @property
    def queue_depth(self) -> int:
        return self.counts.get("pending", 0)


async def status_summary(
    store: Store, metrics: Any, runtime: Any, ceilings: tuple[int, int, int] | None = None
) -> StatusSummary:
    counts: dict[str, int] = dict.fromkeys(EVENT_STATUSES, 0)
    counts.update(await store.count_by_status())
    return StatusSummary(
        counts=counts,
        quota_available=_gauge(metrics, "quota"),
        throttle_available=_gauge(metrics, "throttle"),
        keap_auth=runtime.keap_auth_check(),
        budget=None if ceilings is None else await read_budget(store, ceilings, time.time()),
    )


def _gauge(metrics: Any, window: str) -> int | None:
    """Keap's last reported allowance for ``window``, or None before any call reported one."""
    value = metrics.registry.get_sample_value("relay_keap_quota_available", {"window": window})
    return None if value is None else int(value)
