"""`relay check`'s word on OAuth: configured, but is there a refresh token to use?

With OAuth, the refresh token comes from RELAY_KEAP_REFRESH_TOKEN or from `relay keap
login`, which stores it in the database. Without either, every call would fail and the
relay would pause delivery at its first event; `relay check` says so before that.
"""

from __future__ import annotations

import asyncio

from app.admin.cli import missing_database
from app.bootstrap import DatabaseUnavailable, bootstrap
from app.settings import Settings

LOGIN_HINT = "run `relay keap login` (or set RELAY_KEAP_REFRESH_TOKEN)"


def oauth_token_warning(settings: Settings) -> str | None:
    """A warning line when OAuth is configured but no refresh token is at hand, else None."""
    if settings.auth_mode != "oauth" or settings.keap_refresh_token is not None:
        return None
    if missing_database(settings.database_url) is not None:
        return f"warning: OAuth is configured but no refresh token is stored yet: {LOGIN_HINT}"

    async def stored() -> bool:
        async with bootstrap(settings, pool_size=1) as opened:
            return await opened.store.load_oauth_token() is not None

    try:
        if asyncio.run(stored()):
            return None
    except DatabaseUnavailable as exc:
        return f"warning: OAuth is configured; the database that holds its token: {exc}"
    return f"warning: OAuth is configured but the database holds no refresh token: {LOGIN_HINT}"
