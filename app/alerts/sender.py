"""POST an alert to every RELAY_ALERT_URL, retrying; a failure is logged and counted,
never raised: an alert must not stop delivery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.alerts.messages import Alert
from app.observability.metrics import Metrics

log = logging.getLogger("relay.alerts")

RETRY_DELAYS = (1.0, 5.0, 30.0)  # seconds before the 2nd, 3rd and 4th try
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def url_host(url: str) -> str:
    """What the logs name: an incoming-webhook URL carries its secret in the path."""
    return urlsplit(url).netloc or "(no host)"


class AlertSender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        urls: Sequence[str],
        public_url: str | None,
        metrics: Metrics | None,
        retry_delays: Sequence[float] | None = None,
    ) -> None:
        self.http = http
        self.urls = list(urls)
        self.public_url = public_url
        self.metrics = metrics
        self.retry_delays = list(RETRY_DELAYS if retry_delays is None else retry_delays)

    async def send(self, alert: Alert) -> None:
        payload = alert.payload(self.public_url)
        await asyncio.gather(*(self._post(url, alert.kind, payload) for url in self.urls))

    async def _post(self, url: str, kind: str, payload: dict[str, Any]) -> None:
        error = ""
        for delay in [0.0, *self.retry_delays]:
            await asyncio.sleep(delay)
            try:
                response = await self.http.post(url, json=payload, timeout=TIMEOUT)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                self._count(kind, "sent")
                log.info("alert sent", extra={"kind": kind, "host": url_host(url)})
                return
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the URL refuses this message: trying again cannot help
        self._count(kind, "failed")
        log.warning(
            "could not send an alert",
            extra={"kind": kind, "host": url_host(url), "error": error},
        )

    def _count(self, kind: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.alerts.labels(kind, outcome).inc()
