"""Prometheus metrics, in a registry made per app (never a global built at import).

docs/operations.md says what each one means to an operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_KEAP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FINAL_STATUSES = ("delivered", "dead", "ignored")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_received = Counter(
            "relay_events_received",
            "Webhook requests by source and outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.events_finished = Counter(
            "relay_events",
            "Events reaching a final status (delivered, dead, ignored)",
            ["status"],
            registry=self.registry,
        )
        for status in FINAL_STATUSES:  # present from the start, so rate() sees the zeroes
            self.events_finished.labels(status)
        self.events_stored = Gauge(
            "relay_events_stored",
            "Events in the database by status, as of the last scrape",
            ["status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "relay_queue_depth", "Events pending delivery", registry=self.registry
        )
        self.keap_requests = Counter(
            "relay_keap_requests",
            "Calls to Infusionsoft by operation and HTTP status",
            ["operation", "code"],
            registry=self.registry,
        )
        self.keap_xmlrpc_calls = Counter(
            "relay_keap_xmlrpc_calls",
            "Calls sent to Keap's XML-RPC API (retired on RELAY_KEAP_XMLRPC_SUNSET), by "
            "operation and HTTP status",
            ["operation", "code"],
            registry=self.registry,
        )
        self.keap_duration = Histogram(
            "relay_keap_request_duration_seconds",
            "Duration of calls to Infusionsoft",
            ["operation"],
            buckets=_KEAP_BUCKETS,
            registry=self.registry,
        )
        self.ingest_duration = Histogram(
            "relay_ingest_duration_seconds",
            "Time from request to durable answer",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.keap_quota_available = Gauge(
            "relay_keap_quota_available",
            "Keap's reported quota left, by window",
            ["window"],
            registry=self.registry,
        )
        self.outcome_unknown = Counter(
            "relay_steps_outcome_unknown",
            "Calls that must not run twice left outcome_unknown (Infusionsoft may have carried "
            "them out): not repeated unless replayed from the start",
            ["action"],
            registry=self.registry,
        )
        self.keap_calls_used = Gauge(
            "relay_keap_calls_used",
            "Calls let through by the rate gate in the last second, minute, and since "
            "00:00 UTC (window=day), every replica together, as of the last scrape",
            ["window"],
            registry=self.registry,
        )
        self.keap_call_ceiling = Gauge(
            "relay_keap_call_ceiling",
            "The rate ceiling of each window (RELAY_KEAP_RATE_PER_*)",
            ["window"],
            registry=self.registry,
        )
        self.keap_quota_resets_at = Gauge(
            "relay_keap_quota_resets_at_seconds",
            "When the daily quota resets (the next 00:00 UTC), epoch seconds",
            registry=self.registry,
        )
        self.alerts = Counter(
            "relay_alerts",
            "Alerts POSTed to RELAY_ALERT_URL, by kind and outcome (sent, failed)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self._received: dict[tuple[str, str], Any] = {}
        self.keap_auth_ok = Gauge(
            "relay_keap_auth_ok",
            "0 while delivery is paused because Infusionsoft rejects the credentials, else 1",
            registry=self.registry,
        )
        self.keap_auth_ok.set(1)  # until a call is refused, nothing says otherwise
        self.keap_refresh_token_age = self._read_at_scrape(
            "relay_keap_oauth_refresh_token_age_seconds",
            "Seconds since the OAuth refresh token was last rotated (Keap expires it after "
            "45 days unused); NaN without OAuth or before the token is read",
        )
        self.ingest_writer_up = self._read_at_scrape(
            "relay_sqlite_ingest_writer_up",
            "1 while the process that commits webhooks on SQLite runs, 0 while the writer "
            "thread takes them instead; NaN on PostgreSQL and in relay worker",
        )

    def _read_at_scrape(self, name: str, documentation: str) -> Gauge:
        """A gauge a ``watch_…`` method sets a reader for; NaN until then."""
        gauge = Gauge(name, documentation, registry=self.registry)
        gauge.set(math.nan)
        return gauge

    @staticmethod
    def _watch(gauge: Gauge, read: Callable[[], float | None]) -> None:
        """Call ``read`` at every scrape; None shows as NaN."""

        def value() -> float:
            found = read()
            return math.nan if found is None else found

        gauge.set_function(value)

    def watch_ingest_writer(self, up: Callable[[], bool | None]) -> None:
        """Whether SQLite's ingest writer process runs (1 or 0), at every scrape."""
        self._watch(
            self.ingest_writer_up, lambda: None if (state := up()) is None else float(state)
        )

    def watch_refresh_token_age(self, age: Callable[[], float | None]) -> None:
        """The OAuth refresh token's age, at every scrape."""
        self._watch(self.keap_refresh_token_age, age)

    def received(self, source: str, outcome: str) -> None:
        """Count one webhook request (label children cached: this runs on every request)."""
        child = self._received.get((source, outcome))
        if child is None:
            child = self._received[(source, outcome)] = self.events_received.labels(source, outcome)
        child.inc()
