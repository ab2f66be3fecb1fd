"""relay.yaml as typed models: sources (how to verify and read a webhook) and routes
(which Infusionsoft contact and actions an event becomes).

Validation errors are turned into "file: path: reason" lines by ``app.config.loader``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.config.selectors import Selector
from app.keap.orders import EXTRA_ITEM_TYPES

Scheme = Literal[
    "shopify",
    "woocommerce",
    "stripe",
    "standard",
    "hmac",
    "clickfunnels",
    "paddle",
    "token",
    "none",
]
HttpMethod = Literal["GET", "POST"]


def _to_selector(value: Any) -> Selector:
    if isinstance(value, Selector):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a JMESPath expression (a string)")
    return Selector(value)


SelectorField = Annotated[Selector, BeforeValidator(_to_selector)]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _to_network(value: Any) -> IpNetwork:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None


NetworkField = Annotated[Any, BeforeValidator(_to_network)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


# Defaults each scheme brings: (event_type, event_id) selectors over {headers, body, query}.
SCHEME_DEFAULTS: dict[str, tuple[str | None, str | None]] = {
    "shopify": ('headers."x-shopify-topic"', 'headers."x-shopify-webhook-id"'),
    "woocommerce": ('headers."x-wc-webhook-topic"', 'headers."x-wc-webhook-delivery-id"'),
    "stripe": ("body.type", "body.id"),
    "standard": ("body.type", 'headers."webhook-id"'),
    "clickfunnels": ("body.event_type", "body.event_id"),
    "paddle": ("body.event_type", "body.event_id"),
    "hmac": (None, None),
    "token": (None, None),
    "none": (None, None),
}


class VerifySpec(_Strict):
    scheme: Scheme
    secret: str | None = None
    header: str | None = None  # hmac: the header holding the signature
    encoding: Literal["hex", "base64"] = "hex"  # hmac
    prefix: str = ""  # hmac: e.g. "sha256="
    at: SelectorField | None = None  # token: where the shared secret is in the request
    tolerance_seconds: int | None = Field(default=None, gt=0)  # timestamped schemes

    @model_validator(mode="after")
    def _check_scheme_fields(self) -> VerifySpec:
        if self.scheme != "none" and not self.secret:
            raise ValueError(f"scheme {self.scheme!r} needs a secret")
        if self.scheme == "hmac" and not self.header:
            raise ValueError("scheme 'hmac' needs header (the header holding the signature)")
        if self.scheme == "token" and self.at is None:
            raise ValueError("scheme 'token' needs at (where the token is, e.g. query.token)")
        if self.scheme == "standard" and self.secret and not self.secret.startswith("whsec_"):
            raise ValueError("scheme 'standard' needs a secret starting with whsec_")
        return self


class Source(_Strict):
    verify: VerifySpec
    allow_ips: list[NetworkField] = Field(default_factory=list)
    event_type: SelectorField | None = None
    event_id: SelectorField | None = None
    methods: list[HttpMethod] = Field(default_factory=lambda: list[HttpMethod](["POST"]))

    @model_validator(mode="after")
    def _check(self) -> Source:
        if self.verify.scheme == "none" and not self.allow_ips:
            raise ValueError("scheme 'none' is only allowed together with allow_ips")
        if self.event_type is None and SCHEME_DEFAULTS[self.verify.scheme][0] is None:
            raise ValueError(f"scheme {self.verify.scheme!r} has no default event_type: set one")
        if not self.methods:
            raise ValueError("methods must name at least one of GET, POST")
        return self

    # Cached, like ContactMapping.field_selectors: ingest asks on every webhook.
    @cached_property
    def allowed_methods(self) -> tuple[str, ...]:
        """What ``/hooks/{name}`` answers: the configured methods, and HEAD, which every
        source answers (senders probe a URL before saving it)."""
        return (*dict.fromkeys(self.methods), "HEAD")

    @cached_property
    def allow_header(self) -> str:
        """The ``Allow`` header of this source's 405."""
        return ", ".join(self.allowed_methods)

    @property
    def event_type_selector(self) -> Selector:
        if self.event_type is not None:
            return self.event_type
        default = SCHEME_DEFAULTS[self.verify.scheme][0]
        assert default is not None  # checked in _check
        return Selector(default)

    @property
    def event_id_selector(self) -> Selector | None:
        if self.event_id is not None:
            return self.event_id
        default = SCHEME_DEFAULTS[self.verify.scheme][1]
        return Selector(default) if default else None


class ContactMapping(_Strict):
    email: SelectorField
    given_name: SelectorField | None = None
    family_name: SelectorField | None = None
    full_name: SelectorField | None = None
    phone: SelectorField | None = None
    company: SelectorField | None = None  # a name: resolved to (or created as) a Keap company
    company_id: SelectorField | None = None  # a Keap company id, used as it is
    opt_in_reason: SelectorField | None = None
    custom_fields: dict[int, SelectorField] = Field(default_factory=dict)

    # Cached on first use, like Action.kind: the planner asks on every webhook.
    @cached_property
    def field_selectors(self) -> tuple[tuple[str, Selector], ...]:
        """The optional name fields this mapping sets (not email, full_name or custom)."""
        names = ("given_name", "family_name", "phone", "company", "company_id", "opt_in_reason")
        return tuple(
            (name, selector) for name in names if (selector := getattr(self, name)) is not None
        )


class SequenceRef(_Strict):
    campaign: int = Field(gt=0)
    sequence: int = Field(gt=0)


class GoalRef(_Strict):
    integration: str = Field(min_length=1)
    call_name: str = Field(min_length=1)


PositiveId = Annotated[int, Field(gt=0)]


def _sku_keys(value: Any) -> Any:
    """A product map's keys are the sender's SKUs or ids: YAML may read 1001 as a number."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


class OrderItemSpec(_Strict):
    """Selectors relative to one element of ``items``."""

    sku: SelectorField | None = None  # looked up in ``products``
    product_id: SelectorField | None = None  # a Keap product id, used as it is
    quantity: SelectorField | None = None  # absent: 1
    price: SelectorField | None = None  # per unit; absent: the Keap product's price
    description: SelectorField | None = None

    @model_validator(mode="after")
    def _one_product_key(self) -> OrderItemSpec:
        if (self.sku is None) == (self.product_id is None):
            raise ValueError("an order item names its product by exactly one of sku, product_id")
        return self


def _extra_item_type(value: Any) -> str:
    if value not in EXTRA_ITEM_TYPES:
        raise ValueError(f"must be one of Keap's item types: {', '.join(EXTRA_ITEM_TYPES)}")
    return str(value)


class ExtraItemSpec(_Strict):
    type: Annotated[str, BeforeValidator(_extra_item_type)]
    price: SelectorField  # a zero or missing amount adds no item
    description: SelectorField | None = None


class PaymentSpec(_Strict):
    amount: SelectorField
    type: SelectorField  # a manual payment type configured in Keap, e.g. "'Credit Card (Manual)'"
    date: SelectorField | None = None  # absent: the order's date


class OrderSpec(_Strict):
    title: SelectorField
    date: SelectorField | None = None  # absent: when the webhook arrived
    items: SelectorField
    item: OrderItemSpec
    products: Annotated[dict[str, PositiveId], BeforeValidator(_sku_keys)] | None = None
    fallback_product: PositiveId | None = None
    extra_items: list[ExtraItemSpec] = Field(default_factory=list)
    order_id: SelectorField | None = None
    order_id_field: PositiveId | None = None
    payment: PaymentSpec | None = None

    @model_validator(mode="after")
    def _check_products(self) -> OrderSpec:
        if self.products is not None and not self.products:
            raise ValueError("products is empty: map each sender SKU to a Keap product id")
        if self.item.sku is not None and self.products is None and self.fallback_product is None:
            raise ValueError("item.sku needs products (SKU → Keap product id) or fallback_product")
        if (self.order_id is None) != (self.order_id_field is None):
            raise ValueError(
                "order_id and order_id_field go together: the sender's order id is written "
                "to that order custom field, where a replay finds the order"
            )
        return self


class NoteTemplate:
    """Text with ``{{ selector }}`` parts, compiled once; rendering never runs code."""

    __slots__ = ("parts", "text")
    _PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[str | Selector] = []
        position = 0
        for found in self._PLACEHOLDER.finditer(text):
            self.parts.append(text[position : found.start()])
            self.parts.append(Selector(found.group(1).strip()))
            position = found.end()
        self.parts.append(text[position:])
        self.parts = [part for part in self.parts if part != ""]

    def render(self, document: Any) -> str:
        """Each selector's value as text; a missing value renders as empty."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.search(document)
            if value is None:
                continue
            if isinstance(value, bool):
                out.append("true" if value else "false")
            elif isinstance(value, dict | list):
                out.append(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
            else:
                out.append(str(value))
        return "".join(out).replace("\x00", "")


def _to_template(value: Any) -> NoteTemplate:
    if isinstance(value, NoteTemplate):
        return value
    if not isinstance(value, str):
        raise ValueError("must be text, with {{ selector }} where a value goes")
    return NoteTemplate(value)


class NoteSpec(_Strict):
    title: SelectorField
    body: Annotated[NoteTemplate, BeforeValidator(_to_template)]


class Action(_Strict):
    """One entry of a route's actions: exactly one of these keys."""

    action_set: PositiveId | None = None
    tags: list[PositiveId] | None = Field(default=None, min_length=1)
    remove_tags: list[PositiveId] | None = Field(default=None, min_length=1)
    sequence: SequenceRef | None = None
    remove_sequence: SequenceRef | None = None
    email_template: PositiveId | None = None
    goal: GoalRef | None = None
    order: OrderSpec | None = None  # planned from each event (app.plan.orders)
    note: NoteSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        if len(self._set_keys()) != 1:
            keys = ", ".join(type(self).model_fields)
            raise ValueError(f"an action has exactly one of: {keys}")
        return self

    def _set_keys(self) -> list[str]:
        return [k for k in type(self).model_fields if getattr(self, k) is not None]

    # Cached on first use: the planner asks on every webhook, and the model is frozen.
    @cached_property
    def kind(self) -> str:
        return self._set_keys()[0]

    @property
    def value(self) -> Any:
        return getattr(self, self.kind)

    @cached_property
    def step_params(self) -> dict[str, Any]:
        """The parameters of the step this action plans (the planner copies them)."""
        value = self.value
        if isinstance(value, SequenceRef):
            return {"campaign": value.campaign, "sequence": value.sequence}
        if isinstance(value, GoalRef):
            return {"integration": value.integration, "call_name": value.call_name}
        if isinstance(value, list):
            return {"ids": list(value)}
        return {"id": value}


class Route(_Strict):
    name: str = Field(min_length=1)
    source: str
    event: str = Field(min_length=1)
    when: SelectorField | None = None
    contact: ContactMapping
    actions: list[Action] = Field(default_factory=list)

    def matches_event(self, source: str, event_type: str | None) -> bool:
        """Source and event pattern (exact or glob) match; ``when`` is checked separately."""
        if source != self.source or event_type is None:
            return False
        return self.event == event_type or fnmatchcase(event_type, self.event)


class RelayConfig(_Strict):
    sources: dict[str, Source] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_name_sources(self) -> RelayConfig:
        names: set[str] = set()
        for index, route in enumerate(self.routes):
            if route.source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none defined"
                raise ValueError(
                    f"routes[{index}] ({route.name}): unknown source {route.source!r} "
                    f"(sources: {known})"
                )
            if route.name in names:
                raise ValueError(f"routes[{index}]: duplicate route name {route.name!r}")
            names.add(route.name)
        return self
