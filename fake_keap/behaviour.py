"""The fake's settings: credentials, rate ceilings, latency and which ids exist.

Settings survive ``reset``; injected faults (``faults.py``) do not.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

# How the token endpoint refuses a refresh token it does not accept (``token_answers.py``).
RefreshRefusal = Literal[
    "invalid_grant", "invalid_request", "invalid_client", "bare_400", "bare_401"
]


class FakeBehaviour(BaseModel):
    """Immutable; ``FakeKeapState.configure`` swaps in a validated copy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    valid_keys: frozenset[str] = frozenset()
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    access_token_lifetime: PositiveFloat = 86400.0
    refresh_refusal: RefreshRefusal = "invalid_grant"
    # A refresh token unused this long dies. Keap staff: "the Refresh Token expires after 45
    # days ... So long as you use the Refresh Token within 45 days consistently" it goes on
    # (integration.keap.com/t/rest-api-without-manual-authorization/85209, and
    # /t/how-to-get-access-token/86529; docs/keap-api.md). Each refresh issues a new one,
    # so its age is the time since the credential was last refreshed.
    refresh_token_idle_lifetime: PositiveFloat = 45 * 86400.0

    # Ceilings per credential (sliding 1 s and 60 s windows, the day per UTC day; limits.py);
    # None means no ceiling.
    per_second: PositiveInt | None = None
    per_minute: PositiveInt | None = None
    per_day: PositiveInt | None = None
    retry_after: bool = False

    latency_ms: float = Field(default=0.0, ge=0)

    # The Keap user the credential acts for (REST v2 userinfo "sub"); None: a credential
    # of no user (a service account key), whose userinfo is refused.
    credential_user_id: PositiveInt | None = 1

    # None accepts any positive id; a set makes the fake strict about which ids exist.
    known_tag_ids: frozenset[int] | None = None
    known_action_set_ids: frozenset[int] | None = None
    known_template_ids: frozenset[int] | None = None
    known_custom_field_ids: frozenset[int] | None = None
    known_sequences: frozenset[tuple[int, int]] | None = None
    known_goals: frozenset[tuple[str, str]] | None = None
    # Tags the credential's user may not apply: adding one answers 403, the probe still passes.
    forbidden_tag_ids: frozenset[int] = frozenset()
    # Products by id: their price (used for an order item that names none). None accepts
    # any positive product id, at a price of 0.
    products: dict[int, float] | None = None
    known_order_custom_field_ids: frozenset[int] | None = None
    # Ecommerce Settings > Orders > Manual Payment Types; the names are the examples of
    # RestCreatePaymentRequest.payment_method_type (keap-sdk sdks/v2/swagger.yml).
    manual_payment_types: frozenset[str] = frozenset(
        {"Credit Card (Manual)", "Check", "Cash", "Money Order", "Adjustment"}
    )
    # Action sets that run but report a failed action in their results (IsError true).
    action_sets_reporting_errors: frozenset[int] = frozenset()

    def with_changes(self, **changes: object) -> FakeBehaviour:
        """A validated copy; unknown names or bad values raise ``pydantic.ValidationError``."""
        return FakeBehaviour.model_validate({**self.model_dump(), **changes})
