"""What an alert says: Slack's ``text`` and Discord's ``content`` (the same words, so one
URL of either kind works), plus structured fields for anything else that reads JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from app.delivery.budget import QuotaBudget
from app.domain.problems import DeadGroup

DISCORD_CONTENT_MAX = 2000  # Discord refuses longer messages
RETIRED_MARK = "Keap retired XML-RPC"  # in the reason of a step given up after the sunset


@dataclass(frozen=True)
class Alert:
    kind: str  # dead_events, xmlrpc_retired, auth_paused, auth_resumed, database_unreachable
    severity: str  # error, warning, info
    title: str
    detail: str
    action: str  # what the operator should do
    dashboard_path: str = "/admin/"
    fields: dict[str, Any] = field(default_factory=dict)

    def payload(self, public_url: str | None) -> dict[str, Any]:
        link = f"{public_url.rstrip('/')}{self.dashboard_path}" if public_url else None
        lines = [f"[relay] {self.title}", self.detail, f"What to do: {self.action}"]
        if link:
            lines.append(f"Dashboard: {link}")
        text = "\n".join(lines)
        if len(text) > DISCORD_CONTENT_MAX:
            text = text[: DISCORD_CONTENT_MAX - 1] + "…"
        return {
            "text": text,
            "content": text,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "action": self.action,
            "dashboard_url": link,
            "fields": self.fields,
        }


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def dead_events_alert(group: DeadGroup) -> Alert:
    retired = RETIRED_MARK in group.reason
    many = f"{group.count} events" if group.count != 1 else "1 event"
    where = f"source {group.source!r}, route {group.route or '(none)'!r}"
    return Alert(
        kind="xmlrpc_retired" if retired else "dead_events",
        severity="error",
        title=(
            f"{many} could not run an action set: Keap retired XML-RPC"
            if retired
            else f"{many} went dead ({where})"
        ),
        detail=f"{where}: {group.reason} "
        f"(first {_utc(group.first_at)}, last {_utc(group.last_at)})",
        action=(
            "rebuild the action sets of this route as tags, sequences and email templates "
            "(docs/action-sets.md), then replay these events with --replan"
            if retired
            else "fix the cause named above (relay.yaml, or the record in Infusionsoft), "
            "then replay these events from the dashboard"
        ),
        dashboard_path="/admin/?" + urlencode({"status": "dead", "source": group.source}),
        fields={
            "source": group.source,
            "route": group.route,
            "reason": group.reason,
            "count": group.count,
            "first_at": _utc(group.first_at),
            "last_at": _utc(group.last_at),
        },
    )


def auth_paused_alert(detail: str, probe_seconds: float) -> Alert:
    return Alert(
        kind="auth_paused",
        severity="error",
        title="Delivery to Infusionsoft is paused: the credentials are refused",
        detail=f"{detail}. Events wait in the queue (nothing is lost); the relay tries the "
        f"credentials again every {probe_seconds:g} s.",
        action="renew the Keap API key or OAuth login (relay keap login), or reactivate "
        "the Keap app; delivery resumes by itself once they are accepted",
        fields={"probe_seconds": probe_seconds},
    )


def auth_resumed_alert() -> Alert:
    return Alert(
        kind="auth_resumed",
        severity="info",
        title="Delivery to Infusionsoft resumed: the credentials are accepted again",
        detail="The queued events are being delivered.",
        action="nothing; watch the queue drain on the dashboard",
    )


def database_unreachable_alert(detail: str, since: float) -> Alert:
    return Alert(
        kind="database_unreachable",
        severity="error",
        title="The relay cannot reach its database",
        detail=f"Since {_utc(since)}: {detail}. Webhooks are answered 503 (senders retry) "
        "and nothing is delivered until it answers again.",
        action="check the database server, its disk space and RELAY_DATABASE_URL",
        dashboard_path="/readyz",
        fields={"since": _utc(since), "error": detail},
    )


def quota_alert(budget: QuotaBudget, *, spent: bool) -> Alert:
    day = budget.day
    used = f"{day.used:,} of {day.ceiling:,} calls ({day.percent:.0f} %)"
    resets = _utc(budget.resets_at)
    return Alert(
        kind="quota_spent" if spent else "quota_near",
        severity="error" if spent else "warning",
        title=(
            "Keap's daily quota is spent: delivery waits for the reset"
            if spent
            else f"Keap's daily quota is nearly spent: {day.percent:.0f} % used"
        ),
        detail=f"Today (UTC) the relay has made {used}; the quota resets at {resets}."
        + (" Events wait in the queue until then; nothing is lost." if spent else ""),
        action=(
            "nothing to lose, but delivery is late: if the quota is higher than "
            "RELAY_KEAP_RATE_PER_DAY, raise it; otherwise look for the source sending more "
            "events than usual"
        ),
        fields={"used": day.used, "ceiling": day.ceiling, "resets_at": resets},
    )
