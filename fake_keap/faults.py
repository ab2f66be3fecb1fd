"""Injected faults: forced failures, outages, brownouts, XML-RPC faults, revoked keys.

Not thread-safe on its own: ``FakeKeapState`` holds its lock around every call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fake_keap.records import FailureStatus

THROTTLED_FAULT = (
    "com.infusionsoft.throttle.ThrottlingException: Maximum number of threads throttled"
)


@dataclass
class ForcedFailure:
    """Fail the next ``count`` requests (whose operation is ``operation``, if given).

    With ``after_handling`` the request takes effect first and only its answer is lost,
    which is how a client learns to be idempotent (and to keep a rotated refresh token).
    """

    status: FailureStatus = 503
    count: int = 1
    operation: str | None = None
    retry_after: float | None = None
    after_handling: bool = False

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.status != "drop" and not (
            isinstance(self.status, int) and 400 <= self.status <= 599
        ):
            raise ValueError("status must be an HTTP error status or 'drop'")

    def matches(self, operation: str, is_crm: bool) -> bool:
        # An unnamed failure is meant for /crm calls, never for a token refresh.
        return operation == self.operation if self.operation else is_crm


@dataclass(frozen=True)
class Outage:
    status: FailureStatus
    until: float | None  # monotonic deadline; None lasts until cleared


RetiredFormat = Literal["json", "html"]


@dataclass(frozen=True)
class RetiredXmlRpc:
    """XML-RPC switched off, as after Keap's sunset: every call to /xmlrpc/v1 gets ``status``
    with a JSON (Apigee's "no proxy for this path") or an HTML error page. Keap has not
    published what its retired endpoint will answer; these are the plausible shapes."""

    status: int = 404
    format: RetiredFormat = "json"


@dataclass
class InjectedFault:
    code: int
    string: str
    remaining: int | None  # None: every call


class FaultPlan:
    def __init__(self) -> None:
        self.forced: list[ForcedFailure] = []
        self.outage: Outage | None = None
        self.xmlrpc_brownout = False
        self.xmlrpc_retired: RetiredXmlRpc | None = None
        self.reject_all_credentials = False
        self.xmlrpc_faults: dict[str, InjectedFault] = {}

    def take_forced(self, operation: str, is_crm: bool) -> ForcedFailure | None:
        """Consume one use of the first queued failure that matches this operation."""
        for index, failure in enumerate(self.forced):
            if failure.matches(operation, is_crm):
                failure.count -= 1
                if failure.count == 0:
                    del self.forced[index]
                return failure
        return None

    def active_outage(self, now: float) -> Outage | None:
        if self.outage is not None and self.outage.until is not None and now >= self.outage.until:
            self.outage = None
        return self.outage

    def take_xmlrpc_fault(self, method: str) -> InjectedFault | None:
        fault = self.xmlrpc_faults.get(method)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.xmlrpc_faults[method]
        return fault

    def describe(self) -> dict[str, Any]:
        return {
            "forced": [asdict(failure) for failure in self.forced],
            "outage": asdict(self.outage) if self.outage else None,
            "xmlrpc_brownout": self.xmlrpc_brownout,
            "xmlrpc_retired": asdict(self.xmlrpc_retired) if self.xmlrpc_retired else None,
            "reject_all_credentials": self.reject_all_credentials,
            "xmlrpc_faults": {method: asdict(f) for method, f in self.xmlrpc_faults.items()},
        }
