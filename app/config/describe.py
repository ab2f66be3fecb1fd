"""``relay check``'s report: the environment in brief, then each source and route's plan."""

from __future__ import annotations

from app.config.models import Action, RelayConfig, Route
from app.config.startup import database_shown
from app.delivery.actions import ACTIONS
from app.settings import Settings


def describe_action(action: Action) -> str:
    spec = ACTIONS.get(action.kind)
    if spec is None or spec.describe is None:
        return action.kind
    return spec.describe(action.value)


def describe_route(route: Route) -> list[str]:
    when = f" when {route.when.expression}" if route.when else ""
    fields = [f"email ← {route.contact.email.expression}"]
    names = ("given_name", "family_name", "full_name", "phone", "company", "company_id")
    for name in (*names, "opt_in_reason"):
        selector = getattr(route.contact, name)
        if selector is not None:
            fields.append(f"{name} ← {selector.expression}")
    for field_id, selector in route.contact.custom_fields.items():
        fields.append(f"custom field {field_id} ← {selector.expression}")
    lines = [
        f"  {route.name}: {route.source} / {route.event}{when}",
        f"    1. upsert contact by email ({'; '.join(fields)})",
    ]
    for number, action in enumerate(route.actions, start=2):
        lines.append(f"    {number}. {describe_action(action)}")
    return lines


def describe_config(config: RelayConfig, settings: Settings) -> str:
    per_s, per_min, per_day = settings.rate_ceilings
    mode = {"key": "API key", "oauth": "OAuth2", "none": "no credentials"}[settings.auth_mode]
    lines = [
        f"database: {database_shown(settings.database_url)}",
        f"infusionsoft: {mode}{' (dry-run: nothing is sent)' if settings.is_dry_run else ''}, "
        f"at most {per_s}/s, {per_min}/min, {per_day}/day",
        "",
        f"sources ({len(config.sources)}):",
    ]
    for name, source in config.sources.items():
        ips = f", from {', '.join(map(str, source.allow_ips))}" if source.allow_ips else ""
        event_id = source.event_id_selector
        lines.append(
            f"  {name}: POST /hooks/{name} ({', '.join(source.methods)}), "
            f"verified by {source.verify.scheme}{ips}; event type "
            f"{source.event_type_selector.expression}; dedupe on "
            f"{event_id.expression if event_id else 'the body SHA-256'}"
        )
    lines += ["", f"routes ({len(config.routes)}), run in this order when they match:"]
    for route in config.routes:
        lines += describe_route(route)
    unrouted = sorted(set(config.sources) - {r.source for r in config.routes})
    if unrouted:
        lines += [
            "",
            f"sources with no route (their events are stored as ignored): {', '.join(unrouted)}",
        ]
    return "\n".join(lines)
