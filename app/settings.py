"""The environment: one Settings object, ``RELAY_``-prefixed, also read from ``.env``."""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Keap's documented ceilings; key auth defaults to 5/s because service keys are reported
# to spike-arrest at 5/s (SPEC §2).
KEY_CEILINGS = (5, 240, 30_000)
OAUTH_CEILINGS = (25, 1_500, 150_000)
MIN_ADMIN_TOKEN_LENGTH = 32  # SPEC §2


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RELAY_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `RELAY_X=` in .env means "the default", as in .env.example
        extra="ignore",
    )

    database_url: str = "sqlite:///./data/relay.db"
    config: str = "relay.yaml"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)

    keap_api_key: SecretStr | None = None
    keap_client_id: str | None = None
    keap_client_secret: SecretStr | None = None
    keap_refresh_token: SecretStr | None = None
    keap_base_url: str = "https://api.infusionsoft.com/crm"
    keap_token_url: str = "https://api.infusionsoft.com/token"
    keap_authorize_url: str = "https://accounts.infusionsoft.com/app/oauth/authorize"
    # Keap kills a refresh token unused for 45 days; rotate well inside that, events or not.
    keap_refresh_every_days: float = Field(default=7, gt=0, le=30)
    # The Keap user template emails and notes are sent on behalf of; unset: the credential's
    # own user.
    keap_user_id: int | None = Field(default=None, gt=0)
    keap_rate_per_second: int | None = Field(default=None, gt=0)
    keap_rate_per_minute: int | None = Field(default=None, gt=0)
    keap_rate_per_day: int | None = Field(default=None, gt=0)
    # Keap retires XML-RPC on this day; after it, a non-XML-RPC answer means "retired".
    keap_xmlrpc_sunset: date = date(2026, 12, 31)

    claim_lease_seconds: float = Field(default=30, gt=0)
    dry_run: bool | None = None
    admin_token: SecretStr | None = None
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_header_bytes: int = Field(default=32_768, ge=1024)
    max_headers: int = Field(default=100, ge=10)
    header_timeout_seconds: float = Field(default=10, gt=0)
    body_timeout_seconds: float = Field(default=30, gt=0)
    keep_alive_seconds: int = Field(default=5, ge=1)
    max_connections: int = Field(default=1000, ge=1)
    retry_max_hours: float = Field(default=72, gt=0)
    retry_base_seconds: float = Field(default=5, gt=0)
    auth_probe_seconds: float = Field(default=60, gt=0)
    retention_days: float = Field(default=30, gt=0)
    log_format: Literal["json", "console"] = "json"
    log_pii: bool = False
    # relay serve: a 1 ms GIL switch interval and a tuned garbage collector; relay worker:
    # its start-up heap frozen (app/interpreter.py); false keeps Python's defaults.
    tune_interpreter: bool = True
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # docker compose only: the domain Caddy gets a certificate for (the relay reads none
    # of it; kept here so that .env, the docs and the settings name the same variables).
    domain: str | None = None
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    # An upsert with the same fields as the last one for that email this recently reuses
    # its contact id instead of calling Keap; 0 turns reuse off (app.delivery.reuse).
    contact_reuse_minutes: float = Field(default=5, ge=0, le=1440)
    # The longest a step waits for other events' identical step, to go out as one v2
    # many-contacts call; 0 turns batching off (app.delivery.batching).
    batch_window_seconds: float = Field(default=1.5, ge=0, le=10)
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # Alerts (docs/operations.md): JSON POSTs to these URLs (comma-separated), linking
    # the dashboard at RELAY_PUBLIC_URL.
    alert_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    public_url: str | None = None
    alert_group_seconds: float = Field(default=300, gt=0)
    alert_check_seconds: float = Field(default=15, gt=0)
    alert_quota_percent: float = Field(default=80, gt=0, le=100)

    @field_validator("trusted_proxies", "alert_url", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("alert_url", "public_url")
    @classmethod
    def _check_urls(cls, value: list[str] | str | None) -> list[str] | str | None:
        for url in [value] if isinstance(value, str) else value or []:
            if not url.startswith(("http://", "https://")):
                # (the URL itself is not echoed: an incoming-webhook URL is a secret)
                raise ValueError("each URL must start with http:// or https://")
        return value

    @field_validator("admin_token")
    @classmethod
    def _long_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value()) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN_LENGTH} characters (it is "
                f"{len(value.get_secret_value())}): anyone who can reach /admin may guess "
                "it; make one with `openssl rand -hex 32`"
            )
        return value

    @model_validator(mode="after")
    def _oauth_complete(self) -> Settings:
        # The refresh token may instead come from `relay keap login`, into the database.
        client = [self.keap_client_id, self.keap_client_secret]
        if (any(client) or self.keap_refresh_token) and not all(client):
            raise ValueError(
                "OAuth needs both RELAY_KEAP_CLIENT_ID and RELAY_KEAP_CLIENT_SECRET (and a "
                "refresh token: RELAY_KEAP_REFRESH_TOKEN, or `relay keap login`)"
            )
        return self

    @property
    def auth_mode(self) -> Literal["key", "oauth", "none"]:
        if self.keap_api_key is not None and self.keap_api_key.get_secret_value():
            return "key"
        if self.keap_client_id and self.keap_client_secret:
            return "oauth"
        return "none"

    @property
    def is_dry_run(self) -> bool:
        if self.dry_run is not None:
            return self.dry_run
        return self.auth_mode == "none"

    @property
    def rate_ceilings(self) -> tuple[int, int, int]:
        """(per second, per minute, per day), defaults by auth mode."""
        defaults = OAUTH_CEILINGS if self.auth_mode == "oauth" else KEY_CEILINGS
        return (
            self.keap_rate_per_second or defaults[0],
            self.keap_rate_per_minute or defaults[1],
            self.keap_rate_per_day or defaults[2],
        )
