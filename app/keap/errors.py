"""Every Keap failure, classified once, here: transient (retry later), throttled (a transient
Keap asked us to slow down for), permanent (retrying cannot help) or auth (the credential was
rejected: pause delivery). Nothing else in the relay reads status codes or fault strings.

A transient failure also says whether Keap may have applied the call anyway
(``maybe_applied``): the worker does not repeat such a call when it must not run twice.
docs/delivery-guarantees.md has the rule per answer and per action.

Details are safe to store and show: bodies are excerpted, and the client scrubs its
credentials from them before classifying.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Literal

import httpx

from app.keap.throttle import retry_after_seconds, throttled_retry_after
from app.observability.secrets import REDACTED

DETAIL_LIMIT = 300
ACTION_SET_MIGRATION_DOC = "docs/action-sets.md"
# After the sunset, the gateway's own answers about the credential and the rate still
# mean what they meant (they come before any routing to the retired service).
_GATEWAY_STATUSES = frozenset({401, 403, 429})
_RETIRED_STATUSES = frozenset({404, 410, 503})
_SCAN_LIMIT = 64 * 1024

# addWithDupCheck faults when identical data is resent within minutes; once that window has
# passed the same call finds the contact and answers its id, so the call is worth retrying.
DUPLICATE_REQUEST_RETRY_SECONDS = 180.0

_AUTH_FAULT_KINDS = frozenset({"InvalidKey", "FailedLoginAttempt", "NoAccess"})
_AUTH_FAULT_CODES = frozenset({2, 13, 14})
# A database error is Keap's server failing, like a 500; every other fault is about the call.
_TRANSIENT_FAULT_KINDS = frozenset({"DatabaseError"})
_TRANSIENT_FAULT_CODES = frozenset({4})
_AUTH_OAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
TOKEN_OPERATION = "oauth.refresh"
# What the operator does when Keap refuses the stored refresh token (docs/operations.md).
REAUTHORISE = (
    "to re-authorise, run `relay keap login` (the running relay adopts the new token at "
    "its next probe), or set a new RELAY_KEAP_REFRESH_TOKEN and restart"
)
# 5xx answers that say the request was not carried out: 501 (not implemented) and 503 (Keap's
# gateway, Apigee, answers 503 only when it could not hand the request to Keap: no healthy
# target, connect or TLS failure, Keap closing while the request was still being sent —
# docs.apigee.com/api-platform/troubleshoot/runtime/503-service-unavailable). Every other
# 5xx (500, 502 "Unexpected EOF at target", 504 "Gateway Timeout", …) may come after Keap
# carried the call out.
_NOT_APPLIED_5XX = frozenset({501, 503})

_FAULT_KIND = re.compile(r"^\s*\[(\w+)\]")
_DUPLICATE_REQUEST = re.compile(r"duplicate\s+request", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class KeapError(Exception):
    """A failed Keap call. ``detail`` is safe to store and show (no secrets)."""

    def __init__(self, operation: str, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(operation, _excerpt(detail))
        self.operation = operation
        self.status_code = status_code
        self.detail = _excerpt(detail)

    def __str__(self) -> str:
        return f"{self.operation}: {self.detail}"

    def redact(self, secrets: Iterable[str]) -> None:
        """Replace every occurrence of a secret in the detail (belt and braces: the client
        also scrubs response bodies before they are classified)."""
        for secret in secrets:
            if secret:
                self.detail = self.detail.replace(secret, REDACTED)
        self.args = (self.operation, self.detail)


class KeapTransientError(KeapError):
    """Worth retrying later: outages, timeouts, 5xx, brownouts, throttling."""

    def __init__(
        self,
        operation: str,
        detail: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(operation, detail, status_code=status_code)
        self.retry_after = retry_after
        # The request may have reached Keap and been carried out, only the answer was lost
        # or is a failure page (502, 504, 500, read timeout, connection cut mid-answer).
        # Retrying is safe only for calls that may run twice.
        self.maybe_applied = maybe_applied


class KeapThrottledError(KeapTransientError):
    """Keap refused the call for rate or quota; ``retry_after`` is its hint when it gave one."""


class KeapPermanentError(KeapError):
    """Retrying the same call cannot succeed: bad ids, bad input, unusable answers."""


class KeapRetiredError(KeapPermanentError):
    """Keap's XML-RPC API answered as a retired API after its sunset date: no retry and no
    replay can run the call again (an action set has no REST form)."""


class KeapAuthError(KeapError):
    """The credential was rejected, or the app is inactive: pause delivery and probe."""

    def __init__(
        self,
        operation: str,
        detail: str,
        *,
        status_code: int | None = None,
        token_rejected: bool = False,
        oauth_error: str | None = None,
    ) -> None:
        super().__init__(operation, detail, status_code=status_code)
        # True when the bearer/key itself was refused: an OAuth client refreshes and retries once.
        self.token_rejected = token_rejected
        self.oauth_error = oauth_error  # "invalid_grant", … from the token endpoint

    @property
    def remedy(self) -> str | None:
        """What the operator must do, when the relay cannot recover by itself."""
        return REAUTHORISE if self.operation == TOKEN_OPERATION else None


class KeapForbiddenError(KeapAuthError):
    """A 403: the credential's user may not touch this record or feature — or the whole
    credential is barred. The worker probes at once to tell which."""


def classify_http_error(
    operation: str, status: int, headers: Mapping[str, str], body: bytes
) -> KeapError:
    """A non-2xx HTTP answer (from /crm or the token endpoint) as a KeapError."""
    text = _decode(body)
    detail = _http_detail(status, text)
    if _says_developer_inactive(text):
        return KeapAuthError(operation, detail, status_code=status)
    if status == 429 or _says_developer_over_rate(text):
        return KeapThrottledError(
            operation, detail, status_code=status, retry_after=throttled_retry_after(headers)
        )
    oauth_error = _oauth_error(text)
    if oauth_error in _AUTH_OAUTH_ERRORS:
        return KeapAuthError(operation, detail, status_code=status, oauth_error=oauth_error)
    if status == 403:
        return KeapForbiddenError(operation, detail, status_code=status)
    if status == 401:
        return KeapAuthError(operation, detail, status_code=status, token_rejected=True)
    if status >= 500 or status == 408:
        return KeapTransientError(
            operation,
            detail,
            status_code=status,
            retry_after=retry_after_seconds(headers),
            maybe_applied=status_maybe_applied(status),
        )
    return KeapPermanentError(operation, detail, status_code=status)


def classify_token_error(
    operation: str, status: int, headers: Mapping[str, str], body: bytes
) -> KeapError:
    """A non-2xx answer of the token endpoint. Keap has refused refresh tokens with
    ``400 invalid_grant`` and ``400 invalid_request`` ("Invalid Refresh Token"), and a bad
    client with ``401 invalid_client``: every 4xx but a throttle means "the credential is
    refused" — never a reason to give up on an event (KEAP_API_NOTES, OAuth2)."""
    if status == 429 or status == 408 or status >= 500:
        return classify_http_error(operation, status, headers, body)
    text = _decode(body)
    payload = _json_object(text) or {}
    error = payload.get("error")
    described = payload.get("error_description")
    if isinstance(described, str) and described.strip():
        detail = f"HTTP {status}: {described.strip()}"
        if isinstance(error, str) and error:
            detail += f" ({error})"
    else:
        detail = _http_detail(status, text)
    return KeapAuthError(
        operation, detail, status_code=status, oauth_error=error if isinstance(error, str) else None
    )


def status_maybe_applied(status: int) -> bool:
    """Whether Keap may have carried out a call that got this HTTP error status.

    408 (the server gave up waiting for the request), 429 (refused for rate), 401/403 and the
    other 4xx (refused) and 501/503 (not handed to Keap) mean it did not.
    """
    return status >= 500 and status not in _NOT_APPLIED_5XX


def classify_xmlrpc_fault(operation: str, code: int, message: str) -> KeapError:
    """An XML-RPC ``<fault>``. Its string usually starts with a bracketed kind."""
    detail = f"fault {code}: {message}"
    match = _FAULT_KIND.match(message)
    kind = match.group(1) if match else None
    if "ThrottlingException" in message:
        return KeapThrottledError(operation, detail)
    if _DUPLICATE_REQUEST.search(message):
        return KeapTransientError(operation, detail, retry_after=DUPLICATE_REQUEST_RETRY_SECONDS)
    if kind in _AUTH_FAULT_KINDS or (kind is None and code in _AUTH_FAULT_CODES):
        rejected = kind == "InvalidKey" or (kind is None and code == 2)
        return KeapAuthError(operation, detail, token_rejected=rejected)
    if kind in _TRANSIENT_FAULT_KINDS or (kind is None and code in _TRANSIENT_FAULT_CODES):
        # Keap's database failed while it handled the call, like a 500: part of it may
        # have been done (an action set runs its actions one by one).
        return KeapTransientError(operation, detail, maybe_applied=True)
    # Everything else, "Failed to parse XML-RPC request: Premature end of file" (code 0)
    # included, is about the request: resending the same bytes gets the same fault.
    return KeapPermanentError(operation, detail)


def classify_retired_xmlrpc(
    operation: str, status: int, body: bytes, sunset: date
) -> KeapRetiredError | None:
    """After the XML-RPC sunset date: an answer that is not XML-RPC (a 404, 410 or 503; an
    HTML or JSON page in any status) means the API is gone, not browned out. Keap has not
    published what a retired endpoint answers, so anything but a methodResponse counts —
    except the gateway's credential and rate answers (401, 403, 429, Developer Inactive),
    which are classified as always. None: classify the answer as usual."""
    text = _decode(body)
    if not _xmlrpc_unavailable(status, text):
        return None
    answered = _excerpt_to(_http_detail(status, text), 90)
    return KeapRetiredError(
        operation,
        f"Keap retired XML-RPC ({sunset.isoformat()}, RELAY_KEAP_XMLRPC_SUNSET), the only "
        "way to run an action set: rebuild it as an API goal or as tag, sequence and email "
        f"actions ({ACTION_SET_MIGRATION_DOC}). Keap answered {answered}",
        status_code=status,
    )


def classify_xmlrpc_brownout(operation: str, status: int, body: bytes) -> KeapTransientError | None:
    """Up to the XML-RPC sunset date: a 4xx that is not XML-RPC (a 404 or 410, an error
    page) is a brownout, Keap switching XML-RPC off for up to 48 h to rehearse its
    retirement. It answers then as the retired API would, and the call was not carried out:
    retried, like every brownout, for up to RELAY_RETRY_MAX_HOURS. (A 5xx, and a 2xx page,
    are transient already.) None: classify the answer as usual."""
    if not 400 <= status < 500:
        return None
    text = _decode(body)
    if not _xmlrpc_unavailable(status, text):
        return None
    return KeapTransientError(
        operation,
        f"XML-RPC unavailable, a brownout before its retirement? {_http_detail(status, text)}",
        status_code=status,
    )


def _xmlrpc_unavailable(status: int, text: str) -> bool:
    """An XML-RPC answer that is not XML-RPC: a 404, 410 or 503, or anything but a
    methodResponse — other than the gateway's credential and rate answers."""
    if status in _GATEWAY_STATUSES or _says_developer_inactive(text):
        return False
    return status in _RETIRED_STATUSES or _is_foreign(text, "xmlrpc")


def classify_transport_error(operation: str, exc: httpx.HTTPError) -> KeapTransientError:
    """No usable response: connection refused or dropped, timeout, protocol error."""
    if isinstance(exc, httpx.TimeoutException):
        phase = type(exc).__name__.removesuffix("Timeout").lower() or "request"
        detail = f"timed out ({phase})"
    elif isinstance(exc, httpx.ConnectError):
        detail = f"could not connect: {exc}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    # Connecting, waiting for a pooled connection or writing the request: Keap has not
    # got it. Reading the answer (or the server cutting it short): it may have done it.
    maybe_applied = isinstance(exc, httpx.ReadTimeout | httpx.ReadError | httpx.RemoteProtocolError)
    return KeapTransientError(operation, detail, maybe_applied=maybe_applied)


def classify_unexpected_body(
    operation: str, status: int, body: bytes, *, expected: Literal["json", "xmlrpc"], problem: str
) -> KeapError:
    """A 2xx whose body is not the answer the call promises.

    A body that is not in the API's format at all (HTML, empty, another XML document) is a
    proxy or brownout page: transient, unless it says "Developer Inactive". A body in the
    right format that cannot be read or has the wrong shape is permanent.
    """
    text = _decode(body)
    if _says_developer_inactive(text):
        return KeapAuthError(operation, _http_detail(status, text), status_code=status)
    if _is_foreign(text, expected):
        detail = f"HTTP {status} with a non-API body (proxy or brownout page?): {_summary(text)}"
        return KeapTransientError(operation, detail, status_code=status)
    return KeapPermanentError(operation, f"HTTP {status}: {problem}", status_code=status)


def _is_foreign(text: str, expected: Literal["json", "xmlrpc"]) -> bool:
    stripped = text.strip()
    if not stripped:
        return True
    if expected == "xmlrpc":
        return "<methodResponse" not in stripped
    return stripped.startswith("<")


def _says_developer_inactive(text: str) -> bool:
    return "developer inactive" in text.lower()


def _says_developer_over_rate(text: str) -> bool:
    # The pre-2020 gateway (Mashery) answered 403 "Developer Over Qps"/"Over Rate" pages.
    lowered = text.lower()
    return "developer over qps" in lowered or "developer over rate" in lowered


def _oauth_error(text: str) -> str | None:
    payload = _json_object(text)
    error = payload.get("error") if payload else None
    return error if isinstance(error, str) else None


def _http_detail(status: int, text: str) -> str:
    summary = _summary(text)
    return f"HTTP {status}: {summary}" if summary else f"HTTP {status}"


def _summary(text: str) -> str:
    """The human part of an error body: a JSON message, else the text without markup."""
    payload = _json_object(text)
    if payload is not None:
        message = _json_message(payload)
        if message:
            return message
    return _SPACE.sub(" ", _TAG.sub(" ", text)).strip()


def _json_message(payload: dict[str, Any]) -> str | None:
    fault = payload.get("fault")
    if isinstance(fault, dict) and isinstance(fault.get("faultstring"), str):
        # Apigee: {"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":…}}}
        detail = fault.get("detail")
        code = detail.get("errorcode") if isinstance(detail, dict) else None
        text = str(fault["faultstring"])
        return f"{text} ({code})" if isinstance(code, str) and code else text
    parts = [
        str(payload[key])
        for key in ("message", "error", "error_description", "status")
        if isinstance(payload.get(key), str | int) and payload.get(key) != ""
    ]
    return " - ".join(dict.fromkeys(parts)) or None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _decode(body: bytes) -> str:
    # An error's gist is at its start; a megabyte of proxy page need not be scanned.
    return body[:_SCAN_LIMIT].decode("utf-8", errors="replace")


def _excerpt(text: str) -> str:
    return _excerpt_to(text, DETAIL_LIMIT)


def _excerpt_to(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
