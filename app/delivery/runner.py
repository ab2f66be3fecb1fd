"""Wire a Worker to its store, Keap client, rate gate and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import httpx

from app.alerts.alerter import Alerter, AlertOptions
from app.alerts.sender import AlertSender
from app.bootstrap import bootstrap
from app.config.models import RelayConfig
from app.delivery.actions import KeapActions
from app.delivery.dry_run import DryRunKeapClient
from app.delivery.gate import StoreCallGate, ceilings_for
from app.delivery.worker import Worker, WorkerOptions
from app.interpreter import tune_for_delivery
from app.keap.client import XMLRPC_PATH, KeapCall, KeapClient, KeapCredentials
from app.keap.transport import KeapTransport
from app.observability.logging import register_secrets
from app.observability.metrics import Metrics
from app.observability.secrets import secret_values
from app.settings import Settings
from app.store.base import Store

log = logging.getLogger("relay.keap")


def credentials_from(settings: Settings) -> KeapCredentials:
    def secret(value: object) -> str | None:
        getter = getattr(value, "get_secret_value", None)
        return getter() if getter else None

    return KeapCredentials(
        api_key=secret(settings.keap_api_key),
        client_id=settings.keap_client_id,
        client_secret=secret(settings.keap_client_secret),
        refresh_token=secret(settings.keap_refresh_token),
    )


def build_worker(
    settings: Settings, config: RelayConfig, store: Store, http: httpx.AsyncClient, metrics: Metrics
) -> Worker:
    register_secrets(secret_values(settings, config))

    def observe(call: KeapCall) -> None:
        """Count, time and log each call; the worker's log context names its event,
        source, route and action. (The step's history gets it through its CallContext.)"""
        if settings.is_dry_run:
            metrics.keap_requests.labels(call.operation, "dry_run").inc()
        else:
            code = "none" if call.status_code is None else str(call.status_code)
            metrics.keap_requests.labels(call.operation, code).inc()
            metrics.keap_duration.labels(call.operation).observe(call.duration)
            if call.path.endswith(XMLRPC_PATH):
                metrics.keap_xmlrpc_calls.labels(call.operation, code).inc()
        outcome = "dry_run" if settings.is_dry_run else "ok" if call.error is None else "failed"
        log.info(
            "keap call",
            extra={
                "operation": call.operation,
                "method": call.method,
                "path": call.path,
                "status": call.status_code,
                "outcome": outcome,
                "duration_ms": round(call.duration * 1000, 1),
                "error": call.error,
            },
        )

    options = WorkerOptions(
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.claim_lease_seconds,
        retry_max_hours=settings.retry_max_hours,
        retry_base_seconds=settings.retry_base_seconds,
        auth_probe_interval=settings.auth_probe_seconds,
        dry_run=settings.is_dry_run,
        retention_days=settings.retention_days,
        contact_reuse_seconds=settings.contact_reuse_minutes * 60,
        batch_window_seconds=settings.batch_window_seconds,
        refresh_token_every_seconds=settings.keap_refresh_every_days * 86400.0,
    )
    client: KeapActions
    probe = None
    keeper = None
    gate = None
    if settings.is_dry_run:
        client = DryRunKeapClient(observe)
    else:
        gate = StoreCallGate(store, ceilings_for(*settings.rate_ceilings), metrics)
        transport = KeapTransport(
            http,
            base_url=settings.keap_base_url,
            token_url=settings.keap_token_url,
            credentials=credentials_from(settings),
            token_store=store,
            gate=gate,
            observer=observe,
            xmlrpc_sunset=settings.keap_xmlrpc_sunset,
        )
        keap = KeapClient(transport, user_id=settings.keap_user_id)
        client, probe, keeper = keap, keap.probe_auth, keap.oauth
        if keeper is not None:
            metrics.watch_refresh_token_age(keeper.token_age)
    return Worker(
        store,
        client,
        options,
        metrics,
        probe_auth=probe,
        token_keeper=keeper,
        alerts=build_alerter(settings, store, http, metrics),
        gate_backlog=(lambda: gate.waiting) if gate is not None else None,
    )


def build_alerter(
    settings: Settings, store: Store, http: httpx.AsyncClient, metrics: Metrics
) -> Alerter | None:
    """The worker's alerts, when RELAY_ALERT_URL names where to send them."""
    if not settings.alert_url:
        return None
    sender = AlertSender(http, settings.alert_url, settings.public_url, metrics)
    options = AlertOptions(
        group_seconds=settings.alert_group_seconds,
        check_seconds=settings.alert_check_seconds,
        # A burst of dead events is told once two looks found nothing new in it.
        quiet_seconds=2 * settings.alert_check_seconds,
        ceilings=None if settings.is_dry_run else settings.rate_ceilings,
        quota_percent=settings.alert_quota_percent,
    )
    return Alerter(store, sender, options)


async def run_worker_forever(settings: Settings, config: RelayConfig) -> None:
    """``relay worker``: the worker alone, until SIGTERM or SIGINT."""
    async with bootstrap(settings, tracing=True) as opened:
        worker = build_worker(settings, config, opened.store, opened.http, Metrics())
        tune_for_delivery(settings.tune_interpreter)  # the collector's pauses (interpreter.py)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await worker.start()
            log.info("worker started", extra={"dry_run": settings.is_dry_run})
            await stop.wait()
        finally:
            await worker.stop()
