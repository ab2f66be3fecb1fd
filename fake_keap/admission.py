"""What the fake decides before it touches the CRM: fail, refuse, throttle or accept a call."""

from __future__ import annotations

from dataclasses import dataclass

from fake_keap.faults import ForcedFailure, InjectedFault, RetiredXmlRpc
from fake_keap.records import AuthKind, FailureStatus


@dataclass(frozen=True)
class PresentedCredential:
    kind: AuthKind
    secret: str = ""


@dataclass(frozen=True)
class CallInfo:
    operation: str
    credential: PresentedCredential
    xmlrpc_method: str | None = None  # set for calls to /xmlrpc/v1


@dataclass(frozen=True)
class Refused:
    """Answer with this status (or drop the connection) without handling the call."""

    credential_id: str
    status: FailureStatus
    retry_after: float | None = None


@dataclass(frozen=True)
class Retired:
    """XML-RPC is switched off: answer as the retired endpoint, before any other check."""

    credential_id: str
    retired: RetiredXmlRpc


@dataclass(frozen=True)
class Unauthenticated:
    credential_id: str
    kind: AuthKind


@dataclass(frozen=True)
class Accepted:
    credential_id: str
    fail_after: ForcedFailure | None = None
    xmlrpc_fault: InjectedFault | None = None


Admission = Refused | Retired | Unauthenticated | Accepted
