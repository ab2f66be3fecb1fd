"""The application factory: build the app and, in its lifespan, the store and the HTTP
client (app/bootstrap.py) and the worker — and close them in reverse order."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.admin.endpoints import router as admin_router
from app.admin.login_limits import FailedLogins
from app.api import health, metrics
from app.api.hook_dispatch import HookDispatcher
from app.api.problems import install_problem_handlers
from app.api.proxies import TrustedProxies
from app.bootstrap import bootstrap
from app.config.loader import load_config
from app.config.models import RelayConfig
from app.ingest.openapi import document_hooks
from app.ingest.service import IngestService
from app.interpreter import tune_for_delivery
from app.observability.logging import register_secrets
from app.observability.metrics import Metrics
from app.observability.secrets import secret_values
from app.settings import Settings

log = logging.getLogger("relay")


def load_relay_config(settings: Settings) -> tuple[RelayConfig, str]:
    """The config at RELAY_CONFIG (ConfigError if bad), or none at all when absent."""
    path = Path(settings.config)
    if not path.exists():
        log.warning(
            "no config file: every hook answers 404 until you add one",
            extra={
                "path": str(path),
                "hint": "write one from the sender recipes with `relay init SENDER...` "
                "(`relay recipes` lists them; or copy relay.example.yaml, or set "
                "RELAY_CONFIG), then run `relay check`",
            },
        )
        return RelayConfig(), f"no {path} found: no sources configured"
    config = load_config(path)
    return config, f"{path}: {len(config.sources)} sources, {len(config.routes)} routes"


class Runtime:
    """What /readyz reports about the parts that run beside the API."""

    def __init__(self, settings: Settings, *, run_worker: bool) -> None:
        self.settings = settings
        self.run_worker = run_worker
        self.worker: Any = None

    def worker_check(self) -> dict[str, str]:
        if not self.run_worker:
            return health.check("skipped", "this process runs no worker (--api-only)")
        if self.worker is None:
            return health.check("not_started", "the worker has not started yet")
        result: dict[str, str] = self.worker.health()
        return result

    def keap_auth_check(self) -> dict[str, str]:
        if self.settings.is_dry_run:
            return health.check("skipped", "dry-run: no calls are sent to Infusionsoft")
        if not self.run_worker:
            return health.check("skipped", "this process runs no worker")
        if self.worker is None:
            return health.check("not_started", "the worker has not started yet")
        result: dict[str, str] = self.worker.auth_health()
        return result


def create_app(
    settings: Settings | None = None, *, config: RelayConfig | None = None, run_worker: bool = True
) -> HookDispatcher:
    """The relay's ASGI app: FastAPI, with ``/hooks/{source}`` answered beside it
    (``HookDispatcher``); the FastAPI app is its ``.fastapi``."""
    return HookDispatcher(_fastapi_app(settings, config, run_worker=run_worker, api=True))


def create_worker_app(settings: Settings, config: RelayConfig) -> FastAPI:
    """``relay worker --port``: the delivery worker, with this process's ``/healthz``,
    ``/readyz`` and ``/metrics`` (its deliveries and Keap calls) and nothing else: no
    hooks, no admin API, no dashboard."""
    return _fastapi_app(settings, config, run_worker=True, api=False)


def _fastapi_app(
    settings: Settings | None, config: RelayConfig | None, *, run_worker: bool, api: bool
) -> FastAPI:
    settings = settings or Settings()
    if config is None:
        config, config_detail = load_relay_config(settings)
    else:
        config_detail = f"{len(config.sources)} sources, {len(config.routes)} routes"
    runtime = Runtime(settings, run_worker=run_worker)
    register_secrets(secret_values(settings, config))  # a second net under every log line

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings, tracing=True, ingest=api) as opened:
            store, http = opened.store, opened.http
            app.state.store = store
            app.state.http = http
            worker = None
            if run_worker:
                from app.delivery.runner import build_worker

                worker = build_worker(settings, config, store, http, app.state.metrics)
            if api:
                app.state.failed_logins = FailedLogins(store)  # dashboard sign-ins, per address
                app.state.metrics.watch_ingest_writer(store.ingest_writer_up)
                app.state.ingest = IngestService(
                    config,
                    store,
                    settings.trusted_proxies,
                    on_stored=worker.wake if worker else None,
                )
            else:
                tune_for_delivery(settings.tune_interpreter)  # as `relay worker` (interpreter.py)
            try:
                if worker is not None:
                    runtime.worker = worker
                    await worker.start()
                yield
            finally:
                if worker is not None:
                    await worker.stop()
                if api:
                    app.state.ingest.close()

    app = FastAPI(
        title="Infusionsoft webhook relay" if api else "Infusionsoft webhook relay: worker",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if api else None,
    )
    app.state.settings = settings
    app.state.config = config
    app.state.config_detail = config_detail
    app.state.metrics = Metrics()
    app.state.runtime = runtime
    app.state.proxies = TrustedProxies(settings.trusted_proxies)
    install_problem_handlers(app)
    if api:
        document_hooks(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    if api:
        app.include_router(admin_router)
    return app
