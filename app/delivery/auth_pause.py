"""The credentials' standing as delivery sees it: a rejected credential pauses all delivery
(nothing is burnt) until a probe, every RELAY_AUTH_PROBE_SECONDS, is accepted again. A 403
is probed at once: if the credential still works, the 403 belongs to that one call (a
record or feature the key's user may not touch) and only that event fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app.alerts.alerter import Alerter
from app.keap.client import CallContext
from app.keap.errors import (
    KeapAuthError,
    KeapError,
    KeapForbiddenError,
    KeapPermanentError,
    KeapTransientError,
)
from app.observability.metrics import Metrics

log = logging.getLogger("relay.worker")

# Asks Keap whether it accepts the credential; raises KeapAuthError when it does not.
Probe = Callable[[CallContext], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class AuthPause:
    """``state``: not_started (no call yet), ok, failing (paused) or skipped (dry-run).
    ``spawn`` runs the probe loop as a task the worker stops with its own."""

    def __init__(
        self,
        probe: Probe | None,
        probe_interval: float,
        *,
        stopping: asyncio.Event,
        on_resumed: Callable[[], None],
        spawn: Spawn,
        metrics: Metrics | None = None,
        alerts: Alerter | None = None,
    ) -> None:
        self.probe = probe
        self.probe_interval = probe_interval
        self.metrics = metrics
        self.alerts = alerts
        self._stopping = stopping
        self._on_resumed = on_resumed
        self._spawn = spawn
        self._allowed = asyncio.Event()
        self._allowed.set()
        self.state = "not_started"
        self.detail = "not probed yet: no call has been made"

    @property
    def paused(self) -> bool:
        return not self._allowed.is_set()

    async def wait_until_allowed(self) -> None:
        await self._allowed.wait()

    def skip(self, reason: str) -> None:
        """No credential is used (dry-run)."""
        self.state, self.detail = "skipped", reason

    def accepted(self) -> None:
        """A call or a token refresh went through: the key works (unless told otherwise)."""
        if self.state == "not_started":
            self.state, self.detail = "ok", "credentials accepted"

    def pause(self, error: KeapAuthError) -> None:
        """Keap refused the credential: no event is claimed until a probe is accepted."""
        self.state = "failing"
        self.detail = rejection_detail(error)
        if self.metrics:
            self.metrics.keap_auth_ok.set(0)
        if not self._allowed.is_set():
            return
        self._allowed.clear()
        log.error(
            f"credentials rejected: delivery paused, probing every {self.probe_interval:g} s"
            + (f"; {error.remedy}" if error.remedy else ""),
            extra={"error": error.detail, "remedy": error.remedy},
        )
        self._spawn(self._probe_until_accepted())
        if self.alerts is not None:
            self.alerts.auth_paused(error.detail, self.probe_interval)

    async def judge_forbidden(self, error: KeapForbiddenError, ctx: CallContext) -> KeapError:
        """Probe at once: a 403 while the credential works belongs to the call alone. The
        probe's calls go to the step's history (``ctx``), beside the 403."""
        if self.probe is None:
            return error
        try:
            await self.probe(ctx)
        except KeapAuthError:
            return error  # the whole credential is barred: pause
        except KeapError as exc:  # cannot tell now: try the event again later
            return KeapTransientError(
                error.operation,
                f"{error.detail} (the credential could not be checked: {exc.detail})",
                status_code=error.status_code,
            )
        return KeapPermanentError(
            error.operation,
            f"{error.detail} (the credential works: its user may not do this call)",
            status_code=error.status_code,
        )

    async def _probe_until_accepted(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self.probe_interval)
            if self.probe is None:
                break
            try:
                await self.probe(CallContext())  # a probe of no step: recorded nowhere
            except KeapAuthError as exc:
                self.detail = rejection_detail(exc)
                log.warning(
                    "credentials still rejected; delivery stays paused",
                    extra={"error": exc.detail, "remedy": exc.remedy},
                )
                continue
            except KeapError as exc:  # Keap is down, not our key: keep probing
                log.info("auth probe failed", extra={"error": exc.detail})
                continue
            break
        self.state, self.detail = "ok", "credentials accepted"
        if self.metrics:
            self.metrics.keap_auth_ok.set(1)
        log.info("credentials accepted again: delivery resumes")
        if self.alerts is not None:
            self.alerts.auth_resumed()
        self._allowed.set()
        self._on_resumed()


def rejection_detail(error: KeapAuthError) -> str:
    detail = f"Infusionsoft rejects the credentials: {error.detail}"
    return f"{detail}; {error.remedy}" if error.remedy else detail
