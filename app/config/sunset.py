"""The XML-RPC sunset as it touches a config: which routes still run action sets, and what
`relay check`, `/readyz` and the dashboard tell the operator about them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.config.models import RelayConfig
from app.keap.errors import ACTION_SET_MIGRATION_DOC

REPLACEMENT = (
    "rebuild each as an API goal that starts a campaign sequence, or as tag, sequence "
    f"and email actions: {ACTION_SET_MIGRATION_DOC}"
)


def action_set_uses(config: RelayConfig) -> list[tuple[str, int]]:
    """(route name, action set id) for every action_set action, in file order."""
    return [
        (route.name, int(action.value))
        for route in config.routes
        for action in route.actions
        if action.kind == "action_set"
    ]


def _when(sunset: date, today: date) -> str:
    if today > sunset:
        return f"Keap retired XML-RPC on {sunset.isoformat()}: these steps now fail at once"
    days = (sunset - today).days
    return f"Keap retires XML-RPC on {sunset.isoformat()} (in {days} days)"


def sunset_warnings(config: RelayConfig, sunset: date, today: date | None = None) -> list[str]:
    """One line per route that runs an action set (none when no route does)."""
    today = today or datetime.now(UTC).date()
    when = _when(sunset, today)
    return [
        f"warning: route {route} runs action set {action_set} over XML-RPC. {when} "
        f"(RELAY_KEAP_XMLRPC_SUNSET); {REPLACEMENT}"
        for route, action_set in action_set_uses(config)
    ]


def sunset_summary(config: RelayConfig, sunset: date, today: date | None = None) -> str | None:
    """The same in one sentence, for /readyz and the dashboard; None when no route uses one."""
    uses = action_set_uses(config)
    if not uses:
        return None
    today = today or datetime.now(UTC).date()
    routes = ", ".join(dict.fromkeys(route for route, _ in uses))
    return (
        f"{len(uses)} action set step(s) in routes {routes} run over XML-RPC. "
        f"{_when(sunset, today)} (RELAY_KEAP_XMLRPC_SUNSET); {REPLACEMENT}"
    )
