"""Which operation of the wire contract a /crm request is, from its method and path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

XMLRPC_PATH = "xmlrpc/v1"
UNKNOWN_REST = "rest.unknown"

_ID = r"(?P<{}>\d+)"
_REST_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern.format(contact=_ID.format("contact_id"))), operation)
    for method, pattern, operation in [
        ("PUT", r"rest/v1/contacts", "contact.upsert"),
        ("POST", r"rest/v1/contacts/{contact}/tags", "tags.add"),
        ("DELETE", r"rest/v1/contacts/{contact}/tags/(?P<tag_id>\d+)", "tags.remove"),
        ("DELETE", r"rest/v1/contacts/{contact}/tags", "tags.remove"),
        (
            "POST",
            r"rest/v1/campaigns/(?P<campaign_id>\d+)/sequences/(?P<sequence_id>\d+)/contacts/{contact}",
            "sequence.add",
        ),
        (
            "DELETE",
            r"rest/v1/campaigns/(?P<campaign_id>\d+)/sequences/(?P<sequence_id>\d+)/contacts/{contact}",
            "sequence.remove",
        ),
        (
            "POST",
            r"rest/v1/campaigns/goals/(?P<integration>[^/]+)/(?P<call_name>[^/]+)",
            "goal.achieve",
        ),
        # REST v2's many-contacts calls (infusionsoft/keap-sdk, sdks/v2/swagger.yml).
        ("POST", r"rest/v2/tags/(?P<tag_id>\d+)/contacts:applyTags", "tags.apply_many"),
        ("POST", r"rest/v2/tags/(?P<tag_id>\d+)/contacts:removeTags", "tags.remove_many"),
        (
            "POST",
            r"rest/v2/campaigns/(?P<campaign_id>\d+)/sequences/(?P<sequence_id>\d+):addContacts",
            "sequence.add_many",
        ),
        (
            "POST",
            r"rest/v2/campaigns/(?P<campaign_id>\d+)/sequences/(?P<sequence_id>\d+)"
            r":removeContacts",
            "sequence.remove_many",
        ),
        ("GET", r"rest/v1/oauth/connect/userinfo", "auth.probe"),
        ("GET", r"rest/v1/account/profile", "account.profile"),
        ("GET", r"rest/v2/companies", "company.find"),
        ("POST", r"rest/v2/companies", "company.create"),
        ("POST", r"rest/v2/emails/templates:send", "email_template.send"),
        ("GET", r"rest/v2/oauth/connect/userinfo", "user.discover"),
        ("GET", r"rest/v2/orders", "order.find"),
        ("POST", r"rest/v2/orders", "order.create"),
        ("GET", r"rest/v2/orders/(?P<order_id>\d+)", "order.get"),
        ("POST", r"rest/v2/orders/(?P<order_id>\d+)/payments", "payment.create"),
        ("POST", r"rest/v2/contacts/{contact}/notes", "note.create"),
    ]
]


@dataclass(frozen=True)
class RestRoute:
    operation: str
    params: dict[str, str] = field(default_factory=dict)
    v2: bool = False  # under rest/v2: errors answer the v2 ``Error`` schema


def match_rest_route(method: str, path: str) -> RestRoute:
    """``path`` is relative to ``/crm``, e.g. ``rest/v1/contacts/7/tags``."""
    path = path.strip("/")
    for route_method, pattern, operation in _REST_ROUTES:
        if method == route_method and (found := pattern.fullmatch(path)):
            return RestRoute(operation, found.groupdict(), path.startswith("rest/v2/"))
    return RestRoute(UNKNOWN_REST, v2=path.startswith("rest/v2/"))
