"""Keep an OAuth refresh token alive on an idle relay.

Keap kills a refresh token left unused for 45 days, and a relay that receives no events
makes no calls, so nothing would refresh it. This loop rotates the token once it is older
than RELAY_KEAP_REFRESH_EVERY_DAYS, events or not. Replicas share the token row: each
re-reads it first, so a token another replica rotated recently counts as fresh, and when
two rotate at once Keap refuses the loser, which then adopts the winner's saved token
(``OAuthSession._refresh_round``). The checks are jittered so replicas rarely collide.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Protocol

from app.keap.errors import KeapAuthError, KeapError

log = logging.getLogger("relay.keap")

DAY = 86400.0
MAX_CHECK_SECONDS = 3600.0


class TokenKeeper(Protocol):
    async def refresh_if_older_than(self, max_age_seconds: float) -> bool: ...

    def token_age(self) -> float | None: ...


def check_interval(every_seconds: float) -> float:
    """How often to look at the token's age: hourly, or finer for short periods."""
    return min(MAX_CHECK_SECONDS, every_seconds / 20)


async def keep_refresh_token_fresh(
    keeper: TokenKeeper,
    every_seconds: float,
    *,
    on_refreshed: Callable[[], None],
    on_refused: Callable[[KeapAuthError], None],
) -> None:
    """Run until cancelled; a refused refresh is reported (it pauses delivery)."""
    while True:
        try:
            if await keeper.refresh_if_older_than(every_seconds):
                log.info(
                    "OAuth refresh token renewed ahead of its 45-day expiry",
                    extra={"refresh_every_days": every_seconds / DAY},
                )
                on_refreshed()
        except KeapAuthError as exc:
            on_refused(exc)
        except KeapError as exc:  # Keap or the database is down: try again at the next check
            log.warning("could not renew the OAuth refresh token", extra={"error": exc.detail})
        await asyncio.sleep(check_interval(every_seconds) * random.uniform(0.8, 1.2))


def describe_token_age(keeper: TokenKeeper, every_seconds: float) -> str | None:
    age = keeper.token_age()
    if age is None:
        return None
    return (
        f"OAuth refresh token age {age / DAY:.2f} days (renewed every "
        f"{every_seconds / DAY:g} days; Keap expires it after 45 days unused)"
    )
