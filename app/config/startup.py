"""What `relay serve` and `relay worker` say on start: one log line each for the config,
the database, dry-run or live, the rate ceilings and the worker — never a credential."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from app.config.models import RelayConfig
from app.settings import Settings

CREDENTIAL_KINDS = {"key": "API key (RELAY_KEAP_API_KEY)", "oauth": "OAuth2", "none": "none"}


def database_shown(url: str) -> str:
    """The database URL without its password or query (which may hold one)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return url.split("?", 1)[0]
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def startup_lines(
    settings: Settings, config: RelayConfig, config_detail: str, *, worker: str
) -> list[tuple[str, dict[str, Any]]]:
    """(message, fields) for each line; ``worker`` says where delivery runs."""
    per_second, per_minute, per_day = settings.rate_ceilings
    credential = CREDENTIAL_KINDS[settings.auth_mode]
    if settings.is_dry_run:
        mode = (
            "dry-run: every Infusionsoft call is planned and recorded, none is sent "
            "(set RELAY_KEAP_API_KEY or the OAuth variables to go live)"
        )
    else:
        mode = f"live: calls go to {settings.keap_base_url}"
    return [
        (
            "config loaded",
            {
                "config": config_detail,
                "sources": sorted(config.sources),
                "routes": [route.name for route in config.routes],
            },
        ),
        ("database opened", {"database": database_shown(settings.database_url)}),
        (mode, {"dry_run": settings.is_dry_run, "credentials": credential}),
        (
            "rate ceilings",
            {"per_second": per_second, "per_minute": per_minute, "per_day": per_day},
        ),
        ("worker", {"worker": worker, "concurrency": settings.worker_concurrency}),
    ]


def log_startup(
    log: logging.Logger,
    settings: Settings,
    config: RelayConfig,
    config_detail: str,
    *,
    worker: str,
) -> None:
    for message, fields in startup_lines(settings, config, config_detail, worker=worker):
        log.info(message, extra=fields)
