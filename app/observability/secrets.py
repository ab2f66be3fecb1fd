"""Secrets out of sight: ``REDACTED``, what every hidden secret is shown as, and every
secret value the settings and relay.yaml hold, for the log scrubber.

Imports nothing of the app at run time, so that any module may take ``REDACTED`` from here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from pydantic import SecretStr

    from app.config.models import RelayConfig
    from app.settings import Settings

# What a secret is replaced with wherever it would be shown: logs, stored webhooks, Keap
# errors.
REDACTED = "[redacted]"


def secret_values(settings: Settings, config: RelayConfig) -> list[str]:
    """Credentials, the admin token, the alert URLs and each source's webhook secret."""
    held: list[SecretStr | None] = [
        settings.keap_api_key,
        settings.keap_client_secret,
        settings.keap_refresh_token,
        settings.admin_token,
    ]
    values = [secret.get_secret_value() for secret in held if secret is not None]
    values += settings.alert_url  # an incoming-webhook URL is its own credential
    values += [source.verify.secret for source in config.sources.values() if source.verify.secret]
    if "://" in settings.database_url and "@" in settings.database_url:
        values.append(_database_password(settings.database_url))
    return [spelling for value in values if value for spelling in _spellings(value)]


def _spellings(value: str) -> set[str]:
    """The value, and its percent-encodings (either case): a URL in an error message
    holds a secret that way."""
    forms = {value}
    for encoded in (quote(value, safe=""), quote_plus(value)):
        forms.update((encoded, _HEX.sub(lambda m: m.group(0).lower(), encoded)))
    return forms


_HEX = re.compile("%[0-9A-F]{2}")


def _database_password(url: str) -> str:
    """The password in ``postgresql://user:password@host/db`` ('' when there is none)."""
    credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
    _, _, password = credentials.partition(":")
    return password
