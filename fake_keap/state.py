"""Everything the fake Infusionsoft holds, behind one lock.

The server runs in its own thread; tests read outcomes and inject faults from theirs.
Every public method takes the lock, and nothing awaits while holding it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from fake_keap.admission import (
    Accepted,
    Admission,
    CallInfo,
    Refused,
    Retired,
    Unauthenticated,
)
from fake_keap.behaviour import FakeBehaviour
from fake_keap.crm_data import CrmData
from fake_keap.faults import (
    FaultPlan,
    ForcedFailure,
    InjectedFault,
    Outage,
    RetiredFormat,
    RetiredXmlRpc,
)
from fake_keap.limits import Ceilings, SlidingWindows, throttle_headers
from fake_keap.records import (
    ActionSetRun,
    AuthKind,
    Contact,
    EmailSent,
    FailureStatus,
    GoalAchieved,
    Note,
    Order,
    Payment,
    RequestRecord,
)
from fake_keap.tokens import IssuedTokens, TokenStore, client_matches


class FakeKeapState:
    def __init__(self, **settings: object) -> None:
        """``settings`` are ``FakeBehaviour`` fields, e.g. ``valid_keys={"k"}, per_second=5``."""
        self._lock = threading.RLock()
        self._initial_behaviour = FakeBehaviour().with_changes(**settings)
        self._behaviour = self._initial_behaviour
        self._clear()

    def _clear(self) -> None:
        self._crm = CrmData()
        self._faults = FaultPlan()
        self._windows = SlidingWindows()
        self._tokens = TokenStore()
        self._requests: list[RequestRecord] = []
        self._by_operation: Counter[str] = Counter()
        self._throttled = 0
        self._in_flight: Counter[str] = Counter()

    # -- behaviour ------------------------------------------------------------------

    @property
    def behaviour(self) -> FakeBehaviour:
        return self._behaviour

    def configure(self, **changes: object) -> FakeBehaviour:
        """Change settings (``FakeBehaviour`` fields); takes effect for the next request."""
        with self._lock:
            self._behaviour = self._behaviour.with_changes(**changes)
            return self._behaviour

    def set_valid_keys(self, keys: Iterable[str]) -> None:
        self.configure(valid_keys=frozenset(keys))

    def set_oauth(self, client_id: str, client_secret: str, refresh_token: str | None) -> None:
        """The OAuth client the fake knows, and its live refresh token (None: none yet)."""
        with self._lock:
            self.configure(oauth_client_id=client_id, oauth_client_secret=client_secret)
            self._tokens.set_refresh_token(refresh_token, time.monotonic())

    def reset(self, keep_config: bool = True) -> None:
        """Forget records, faults and counters; settings stay unless ``keep_config`` is False."""
        with self._lock:
            refresh_token = self._tokens.refresh_token
            # A reset forgets records, not time: the token's 45-day life goes on counting
            # from its issue (docs/keap-api.md, "refresh token lifetime").
            issued_at = self._tokens.refresh_token_issued_at
            self._clear()
            if keep_config:
                self._tokens.set_refresh_token(refresh_token, issued_at)
            else:
                self._behaviour = self._initial_behaviour

    # -- OAuth -----------------------------------------------------------------------

    @property
    def refresh_token(self) -> str | None:
        """The one refresh token the token endpoint accepts right now."""
        return self._tokens.refresh_token

    @property
    def refresh_count(self) -> int:
        return self._tokens.refreshes

    def issue_access_token(self) -> str:
        """A valid bearer token without a refresh, for tests that start authenticated."""
        with self._lock:
            lifetime = self._behaviour.access_token_lifetime
            return self._tokens.issue_access_token(time.monotonic(), lifetime)

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._tokens.expire_access_tokens()

    def age_refresh_token(self, seconds: float) -> None:
        """Time passes for the live refresh token: as if issued ``seconds`` earlier."""
        with self._lock:
            self._tokens.refresh_token_issued_at -= seconds

    def revoke_refresh_token(self) -> None:
        """The live refresh token dies (expired, revoked, or lost in a crash window): the
        token endpoint refuses it as ``refresh_refusal`` says."""
        with self._lock:
            self._tokens.refresh_token = None

    def issue_authorization_code(self, client_id: str, redirect_uri: str) -> str | None:
        """What the authorize page hands back after the user allows access; None for an
        unknown client."""
        with self._lock:
            if client_id != self._behaviour.oauth_client_id:
                return None
            return self._tokens.issue_code(redirect_uri, time.monotonic())

    def redeem_authorization_code(self, code: str, redirect_uri: str) -> IssuedTokens | None:
        with self._lock:
            lifetime = self._behaviour.access_token_lifetime
            return self._tokens.redeem_code(code, redirect_uri, time.monotonic(), lifetime)

    def client_is_valid(self, client_id: str, client_secret: str) -> bool:
        return client_matches(self._behaviour, client_id, client_secret)

    def refresh(self, presented_refresh_token: str) -> IssuedTokens | None:
        """Rotate the refresh token; None when it is not the live one (or all are rejected)."""
        with self._lock:
            if self._faults.reject_all_credentials:
                return None
            return self._tokens.refresh(presented_refresh_token, time.monotonic(), self._behaviour)

    # -- fault injection -------------------------------------------------------------

    def fail_next(
        self,
        status: FailureStatus = 503,
        count: int = 1,
        operation: str | None = None,
        retry_after: float | None = None,
        after_handling: bool = False,
    ) -> None:
        """Queue ``count`` failures: an HTTP status, or ``"drop"`` to cut the connection.

        Without ``operation`` they hit the next /crm calls; name ``"oauth.refresh"`` to fail
        the token endpoint. ``after_handling`` applies the call, then loses its answer.
        """
        failure = ForcedFailure(status, count, operation, retry_after, after_handling)
        with self._lock:
            self._faults.forced.append(failure)

    def set_outage(self, status: FailureStatus = 503, seconds: float | None = None) -> None:
        """Fail every /crm call for ``seconds`` (or until ``clear_outage``)."""
        until = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._faults.outage = Outage(status, until)

    def clear_outage(self) -> None:
        with self._lock:
            self._faults.outage = None

    def set_xmlrpc_brownout(self, on: bool = True) -> None:
        with self._lock:
            self._faults.xmlrpc_brownout = on

    def retire_xmlrpc(
        self, on: bool = True, status: int = 404, body_format: RetiredFormat = "json"
    ) -> None:
        """Answer every XML-RPC call as Keap's retired endpoint might (``RetiredXmlRpc``)."""
        retired = RetiredXmlRpc(status, body_format) if on else None
        with self._lock:
            self._faults.xmlrpc_retired = retired

    def set_fault(self, method: str, code: int, string: str, count: int | None = None) -> None:
        """Answer XML-RPC ``method`` with this fault, ``count`` times (None: always)."""
        with self._lock:
            self._faults.xmlrpc_faults[method] = InjectedFault(code, string, count)

    def set_reject_all_credentials(self, on: bool = True) -> None:
        with self._lock:
            self._faults.reject_all_credentials = on

    def clear_faults(self) -> None:
        """Remove every injected fault (settings such as latency stay)."""
        with self._lock:
            self._faults = FaultPlan()

    # -- what the server calls -------------------------------------------------------

    def admit(self, call: CallInfo) -> Admission:
        """Decide, atomically, whether a /crm call fails, is refused, throttled or handled.

        Checked in the order a gateway would: outage, XML-RPC retired (no route to it, so
        no credential check either), XML-RPC brownout, credential, rate
        ceiling (so forced failures count against it, like real 5xx), forced failure.
        """
        now = time.monotonic()
        with self._lock:
            behaviour = self._behaviour
            credential_id = self._credential_id(call)
            outage = self._faults.active_outage(now)
            if outage is not None:
                return Refused(credential_id, outage.status)
            if call.xmlrpc_method is not None and self._faults.xmlrpc_retired is not None:
                return Retired(credential_id, self._faults.xmlrpc_retired)
            if call.xmlrpc_method is not None and self._faults.xmlrpc_brownout:
                return Refused(credential_id, 503)
            if credential_id == "" or self._faults.reject_all_credentials:
                return Unauthenticated(credential_id, call.credential.kind)
            verdict = self._windows.try_acquire(
                credential_id, now, _ceilings(behaviour), time.time()
            )
            if not verdict.allowed:
                retry_after = verdict.retry_after if behaviour.retry_after else None
                return Refused(credential_id, 429, retry_after)
            forced = self._faults.take_forced(call.operation, is_crm=True)
            if forced is not None and not forced.after_handling:
                return Refused(credential_id, forced.status, forced.retry_after)
            if call.xmlrpc_method is None:
                return Accepted(credential_id, forced)
            return Accepted(
                credential_id, forced, self._faults.take_xmlrpc_fault(call.xmlrpc_method)
            )

    def take_forced_token_failure(self) -> ForcedFailure | None:
        with self._lock:
            return self._faults.take_forced("oauth.refresh", is_crm=False)

    def _credential_id(self, call: CallInfo) -> str:
        """Who the rate windows count against; "" when the credential is not valid."""
        credential = call.credential
        if credential.kind == "key" and credential.secret in self._behaviour.valid_keys:
            return "key:" + credential.secret
        if credential.kind == "bearer" and self._tokens.is_valid_access_token(
            credential.secret, time.monotonic()
        ):
            return f"oauth:{self._behaviour.oauth_client_id}"
        return ""

    def throttle_headers(self, credential_id: str) -> dict[str, str]:
        with self._lock:
            usage = self._windows.usage(credential_id, time.monotonic(), time.time())
            return throttle_headers(usage, _ceilings(self._behaviour))

    @contextmanager
    def editing_crm(self) -> Iterator[CrmData]:
        """Hold the lock while a handler reads and changes the CRM records."""
        with self._lock:
            yield self._crm

    def delete_contact(self, contact_id: int) -> None:
        """Delete a contact as a user does in Keap (``RecordNotFound`` if there is none)."""
        with self._lock:
            self._crm.delete_contact(contact_id)

    @contextmanager
    def serving(self, operation: str) -> Iterator[None]:
        """Count a /crm request as in flight from its arrival until its answer is ready."""
        with self._lock:
            self._in_flight[operation] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[operation] -= 1

    def in_flight(self) -> Counter[str]:
        """/crm requests received and not yet answered, by operation (a client killed now
        never gets their answers)."""
        with self._lock:
            return +self._in_flight  # the positive counts only

    def record_request(
        self, at: float, operation: str, auth: AuthKind, status: int, method: str, path: str
    ) -> None:
        """Log a finished request; ``at`` is its arrival (wall clock), before any latency."""
        record = RequestRecord(at, operation, auth, status, status == 429, method, path)
        with self._lock:
            self._requests.append(record)
            self._by_operation[operation] += 1
            self._throttled += record.throttled

    # -- read access -----------------------------------------------------------------

    @property
    def contacts(self) -> list[Contact]:
        with self._lock:
            return list(self._crm.contacts.values())

    def contact(self, contact_id: int) -> Contact | None:
        with self._lock:
            return self._crm.contacts.get(contact_id)

    def contact_by_email(self, email: str) -> Contact | None:
        with self._lock:
            found = self._crm.find_by_email(email)
            return found[0] if found else None

    def tags_of(self, contact_id: int) -> set[int]:
        with self._lock:
            return set(self._crm.tags.get(contact_id, set()))

    def sequences_of(self, contact_id: int) -> set[tuple[int, int]]:
        with self._lock:
            return set(self._crm.sequences.get(contact_id, set()))

    @property
    def emails_sent(self) -> list[EmailSent]:
        with self._lock:
            return list(self._crm.emails_sent)

    @property
    def goals_achieved(self) -> list[GoalAchieved]:
        with self._lock:
            return list(self._crm.goals_achieved)

    @property
    def action_set_runs(self) -> list[ActionSetRun]:
        with self._lock:
            return list(self._crm.action_set_runs)

    @property
    def companies(self) -> dict[int, str]:
        """Company records by id: their names."""
        with self._lock:
            return dict(self._crm.companies)

    @property
    def orders(self) -> list[Order]:
        with self._lock:
            return list(self._crm.orders.values())

    @property
    def payments(self) -> list[Payment]:
        with self._lock:
            return list(self._crm.payments)

    @property
    def notes(self) -> list[Note]:
        with self._lock:
            return list(self._crm.notes)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def request_count(self, operation: str | None = None) -> int:
        with self._lock:
            return len(self._requests) if operation is None else self._by_operation[operation]

    def snapshot(self, log_limit: int | None = None) -> dict[str, Any]:
        """All state and counters as JSON-ready data (the last ``log_limit`` requests)."""
        with self._lock:
            log = self._requests if log_limit is None else self._requests[-log_limit:]
            if log_limit == 0:
                log = []
            return {
                "contacts": [self._contact_json(c) for c in self._crm.contacts.values()],
                "emails_sent": [asdict(e) for e in self._crm.emails_sent],
                "goals_achieved": [asdict(g) for g in self._crm.goals_achieved],
                "action_set_runs": [asdict(r) for r in self._crm.action_set_runs],
                "companies": {str(i): n for i, n in self._crm.companies.items()},
                "orders": [
                    asdict(o) | {"total_cents": o.total_cents} for o in self._crm.orders.values()
                ],
                "payments": [asdict(p) for p in self._crm.payments],
                "notes": [asdict(n) for n in self._crm.notes],
                "requests": [{**asdict(r), "dropped": r.dropped} for r in log],
                "in_flight": dict(+self._in_flight),
                "counters": {
                    "requests": len(self._requests),
                    "throttled": self._throttled,
                    "refreshes": self._tokens.refreshes,
                    "codes_redeemed": self._tokens.codes_redeemed,
                    "by_operation": dict(self._by_operation),
                },
                "oauth": {"refresh_token": self._tokens.refresh_token},
                "behaviour": self._behaviour.model_dump(mode="json"),
                "faults": self._faults.describe(),
            }

    def _contact_json(self, contact: Contact) -> dict[str, Any]:
        return {
            **asdict(contact),
            "custom_fields": {str(k): v for k, v in contact.custom_fields.items()},
            "tags": sorted(self._crm.tags.get(contact.id, set())),
            "sequences": [list(p) for p in sorted(self._crm.sequences.get(contact.id, set()))],
        }


def _ceilings(behaviour: FakeBehaviour) -> Ceilings:
    return Ceilings(behaviour.per_second, behaviour.per_minute, behaviour.per_day)
