"""``relay check``'s report: the environment in brief, then each source and route's plan."""

from __future__ import annotations

from app.config.models import Action, OrderSpec, RelayConfig, Route
from app.config.startup import database_shown
from app.settings import Settings


def describe_action(action: Action) -> str:
    value = action.value
    match action.kind:
        case "action_set":
            return f"run action set {value} (XML-RPC ContactService.runActionSequence)"
        case "tags":
            return f"apply tags {', '.join(map(str, value))}"
        case "remove_tags":
            return f"remove tags {', '.join(map(str, value))}"
        case "sequence":
            return f"add to campaign {value.campaign} sequence {value.sequence}"
        case "remove_sequence":
            return f"remove from campaign {value.campaign} sequence {value.sequence}"
        case "email_template":
            return f"send email template {value}"
        case "goal":
            return f"achieve API goal {value.integration}/{value.call_name}"
        case "order":
            return describe_order(value)
        case "note":
            return f"add a note titled {value.title.expression}: {value.body.text!r}"
    return action.kind


def describe_order(order: OrderSpec) -> str:
    """The order plan: where items come from, the product map, the payment."""
    item = order.item
    product = (
        f"product id ← {item.product_id.expression}"
        if item.product_id is not None
        else f"SKU ← {item.sku.expression if item.sku else ''} via {_product_map(order)}"
        + (
            f", else product {order.fallback_product}"
            if order.fallback_product
            else ", an unmapped SKU makes the event dead"
        )
    )
    extras = ", ".join(f"{e.type} ← {e.price.expression}" for e in order.extra_items)
    lines = [
        f"create a Keap order {order.title.expression}: one item per {order.items.expression} "
        f"({product})" + (f"; plus {extras}" if extras else ""),
    ]
    if order.order_id is not None:
        lines.append(
            f"sender order id {order.order_id.expression} → order custom field "
            f"{order.order_id_field} (a replay reuses that order)"
        )
    else:
        lines.append("no order_id_field: a replay from the start creates a second order")
    if order.payment is not None:
        lines.append(
            f"then record a payment of {order.payment.amount.expression} "
            f"({order.payment.type.expression})"
        )
    return "\n       ".join(lines)


def _product_map(order: OrderSpec) -> str:
    pairs = [f"{sku} → {product}" for sku, product in (order.products or {}).items()]
    shown = ", ".join(pairs[:10]) + (f", … ({len(pairs)} in all)" if len(pairs) > 10 else "")
    return f"products {{{shown}}}"


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
