"""Every failure form Keap is known to produce lands in the right class, with a usable wait."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from app.keap.errors import (
    DETAIL_LIMIT,
    REAUTHORISE,
    KeapAuthError,
    KeapForbiddenError,
    KeapPermanentError,
    KeapThrottledError,
    KeapTransientError,
    classify_http_error,
    classify_token_error,
    classify_transport_error,
    classify_unexpected_body,
    classify_xmlrpc_fault,
)

QUOTA_EXCEEDED = b'{"code": "429", "message": "Quota Exceeded", "status": "Request Throttled"}'
APIGEE_FAULT = (
    b'{"fault": {"faultstring": "Rate limit quota violation. Quota limit exceeded.",'
    b' "detail": {"errorcode": "policies.ratelimit.QuotaViolation"}}}'
)
THROTTLE_HEADERS = {
    "x-keap-product-throttle-limit": "240",
    "x-keap-product-throttle-time-unit": "MINUTE",
    "x-keap-product-throttle-interval": "1",
    "x-keap-product-throttle-available": "0",
    "x-keap-product-quota-limit": "30000",
    "x-keap-product-quota-available": "1200",
}
DEVELOPER_INACTIVE = b"<html><body><h1>Developer Inactive</h1></body></html>"
BROWNOUT_PAGE = b"<!DOCTYPE html><html><body><h1>We'll be right back</h1></body></html>"


def request() -> httpx.Request:
    return httpx.Request("POST", "https://keap.test/crm/xmlrpc/v1")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused", request=request()), "connect"),
        (httpx.ConnectTimeout("timed out", request=request()), "timed out (connect)"),
        (httpx.ReadTimeout("timed out", request=request()), "timed out (read)"),
        (httpx.PoolTimeout("timed out", request=request()), "timed out (pool)"),
        (httpx.RemoteProtocolError("peer closed connection", request=request()), "peer closed"),
        (httpx.ReadError("connection reset", request=request()), "connection reset"),
    ],
)
def test_transport_failures_are_transient(exc: httpx.HTTPError, expected: str) -> None:
    error = classify_transport_error("tags.add", exc)
    assert type(error) is KeapTransientError
    assert expected in error.detail
    assert error.status_code is None
    assert error.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_failures_are_transient(status: int) -> None:
    error = classify_http_error("contact.upsert", status, {}, b"<html>Bad Gateway</html>")
    assert type(error) is KeapTransientError
    assert error.status_code == status
    assert error.retry_after is None


# Whether Keap may have carried out a call, per answer (docs/delivery-guarantees.md).
MAYBE_APPLIED_BY_STATUS = {
    500: True,  # Keap (or Apigee) failed while it had the request
    502: True,  # Apigee: "Unexpected EOF at target", Keap cut its answer
    504: True,  # Apigee gave up waiting for Keap's answer
    520: True,  # an unlisted 5xx: assume the worst
    501: False,  # not implemented: nothing was done
    503: False,  # Apigee could not hand the request to Keap
    408: False,  # the server gave up waiting for our request
}


@pytest.mark.parametrize(("status", "maybe"), MAYBE_APPLIED_BY_STATUS.items())
def test_whether_a_server_failure_may_have_been_applied(status: int, maybe: bool) -> None:
    error = classify_http_error("action_set.run", status, {}, b"<html>error</html>")
    assert isinstance(error, KeapTransientError)
    assert error.maybe_applied is maybe


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "30"}])
def test_a_503_with_or_without_retry_after_was_not_applied(headers: dict[str, str]) -> None:
    error = classify_http_error("action_set.run", 503, headers, b"")
    assert isinstance(error, KeapTransientError)
    assert not error.maybe_applied


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429])
def test_refusals_were_not_applied(status: int) -> None:
    error = classify_http_error("goal.achieve", status, {}, QUOTA_EXCEEDED)
    assert not getattr(error, "maybe_applied", False)


@pytest.mark.parametrize(
    ("exc", "maybe"),
    [
        (httpx.ConnectError("refused", request=request()), False),
        (httpx.ConnectTimeout("timed out", request=request()), False),
        (httpx.PoolTimeout("timed out", request=request()), False),
        (httpx.WriteTimeout("timed out", request=request()), False),
        (httpx.ReadTimeout("timed out", request=request()), True),
        (httpx.ReadError("connection reset", request=request()), True),
        (httpx.RemoteProtocolError("peer closed connection", request=request()), True),
    ],
)
def test_whether_a_transport_failure_may_have_been_applied(
    exc: httpx.HTTPError, maybe: bool
) -> None:
    assert classify_transport_error("email_template.send", exc).maybe_applied is maybe


def test_a_database_error_fault_may_have_been_applied() -> None:
    error = classify_xmlrpc_fault("action_set.run", 4, "[DatabaseError]Database unavailable")
    assert isinstance(error, KeapTransientError)
    assert error.maybe_applied
    throttled = classify_xmlrpc_fault("action_set.run", 0, "ThrottlingException: throttled")
    assert isinstance(throttled, KeapThrottledError)
    assert not throttled.maybe_applied


def test_a_503_brownout_honours_retry_after() -> None:
    error = classify_http_error("action_set.run", 503, {"Retry-After": "3600"}, b"")
    assert isinstance(error, KeapTransientError)
    assert error.retry_after == 3600


@pytest.mark.parametrize("body", [QUOTA_EXCEEDED, APIGEE_FAULT, b""])
def test_429_is_throttled_whatever_the_body(body: bytes) -> None:
    error = classify_http_error("tags.add", 429, {}, body)
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after is None


def test_429_body_shapes_give_readable_details() -> None:
    assert "Quota Exceeded" in classify_http_error("tags.add", 429, {}, QUOTA_EXCEEDED).detail
    assert "Rate limit quota violation" in classify_http_error("t", 429, {}, APIGEE_FAULT).detail


def test_429_retry_after_seconds_wins_over_throttle_headers() -> None:
    headers = {**THROTTLE_HEADERS, "Retry-After": "7"}
    error = classify_http_error("tags.add", 429, headers, QUOTA_EXCEEDED)
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after == 7


def test_429_retry_after_http_date() -> None:
    moment = datetime.now(UTC) + timedelta(seconds=120)
    error = classify_http_error(
        "tags.add", 429, {"Retry-After": format_datetime(moment, usegmt=True)}, b""
    )
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after is not None
    assert 115 <= error.retry_after <= 121


def test_429_retry_after_date_in_the_past_means_now() -> None:
    error = classify_http_error("t", 429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"")
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after == 0


def test_429_spent_throttle_window_hints_the_window() -> None:
    error = classify_http_error("tags.add", 429, THROTTLE_HEADERS, QUOTA_EXCEEDED)
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after == 60


def test_429_spent_daily_quota_waits_for_its_reset_iso() -> None:
    reset = datetime.now(UTC) + timedelta(hours=5)
    headers = {
        "x-keap-product-throttle-available": "100",
        "x-keap-product-quota-available": "0",
        "x-keap-product-quota-expiry-time": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    error = classify_http_error("tags.add", 429, headers, QUOTA_EXCEEDED)
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after is not None
    assert 5 * 3600 - 5 <= error.retry_after <= 5 * 3600


def test_429_quota_expiry_as_epoch_milliseconds_as_keap_sends_live() -> None:
    reset_ms = int((time.time() + 600) * 1000)
    headers = {
        "x-keap-product-quota-available": "0",
        "x-keap-product-quota-expiry-time": str(reset_ms),
    }
    error = classify_http_error("tags.add", 429, headers, b"")
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after is not None
    assert 595 <= error.retry_after <= 600


def test_429_with_both_spent_waits_for_the_longer() -> None:
    reset = datetime.now(UTC) + timedelta(hours=2)
    headers = {
        **THROTTLE_HEADERS,
        "x-keap-product-quota-available": "0",
        "x-keap-product-quota-expiry-time": reset.isoformat(),
    }
    error = classify_http_error("tags.add", 429, headers, b"")
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after is not None
    assert error.retry_after > 3600


@pytest.mark.parametrize("status", [400, 404, 405, 409, 422])
def test_other_client_errors_are_permanent(status: int) -> None:
    error = classify_http_error("tags.add", status, {}, b'{"message": "Contact 48872 not found"}')
    assert type(error) is KeapPermanentError
    assert error.status_code == status
    assert "Contact 48872 not found" in error.detail


@pytest.mark.parametrize(
    ("status", "body", "rejected"),
    [
        (401, b'{"message": "Invalid Access Token"}', True),
        (401, b'{"message": "Invalid API key"}', True),
        (403, b'{"message": "Forbidden"}', False),
    ],
)
def test_rejected_credentials_are_auth(status: int, body: bytes, rejected: bool) -> None:
    error = classify_http_error("auth.probe", status, {}, body)
    assert isinstance(error, KeapAuthError)
    assert error.token_rejected is rejected


@pytest.mark.parametrize("status", [200, 403, 500, 596])
def test_developer_inactive_page_is_auth_whatever_the_status(status: int) -> None:
    if status == 200:
        error = classify_unexpected_body(
            "action_set.run", 200, DEVELOPER_INACTIVE, expected="xmlrpc", problem="not XML-RPC"
        )
    else:
        error = classify_http_error("action_set.run", status, {}, DEVELOPER_INACTIVE)
    assert isinstance(error, KeapAuthError)
    assert "Developer Inactive" in error.detail


def test_old_gateway_over_rate_page_is_throttled() -> None:
    error = classify_http_error("tags.add", 403, {}, b"<h1>Developer Over Qps</h1>")
    assert isinstance(error, KeapThrottledError)


@pytest.mark.parametrize("expected", ["xmlrpc", "json"])
@pytest.mark.parametrize("body", [BROWNOUT_PAGE, b"", b"   "])
def test_200_with_a_page_instead_of_an_answer_is_transient(expected: str, body: bytes) -> None:
    error = classify_unexpected_body("action_set.run", 200, body, expected=expected, problem="x")  # type: ignore[arg-type]
    assert type(error) is KeapTransientError
    assert error.status_code == 200


def test_200_json_on_the_xmlrpc_endpoint_is_a_foreign_page() -> None:
    error = classify_unexpected_body("a", 200, b'{"ok": true}', expected="xmlrpc", problem="x")
    assert type(error) is KeapTransientError


def test_200_with_a_broken_answer_in_the_right_format_is_permanent() -> None:
    body = b"<?xml version='1.0'?><methodResponse><params><param><value><int>x"
    error = classify_unexpected_body("a", 200, body, expected="xmlrpc", problem="malformed XML")
    assert type(error) is KeapPermanentError
    assert "malformed XML" in error.detail
    json_error = classify_unexpected_body("c", 200, b"id=5", expected="json", problem="not JSON")
    assert type(json_error) is KeapPermanentError


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (2, "[InvalidKey]Invalid Key", KeapAuthError),
        (13, "[FailedLoginAttempt]Login failed", KeapAuthError),
        (14, "[NoAccess]No access to this resource", KeapAuthError),
        (
            5,
            "[RecordNotFound]Unable to perform update. Record not found for Id:48872",
            KeapPermanentError,
        ),
        (12, "[InvalidParameter]Invalid parameter: contactId", KeapPermanentError),
        (6, "[Loading]Error loading follow-up sequence", KeapPermanentError),
        (6, "[LoadingError]Error loading", KeapPermanentError),
        (1, "[InvalidConfig]Bad config", KeapPermanentError),
        (7, "[NoTableAccess]No table access", KeapPermanentError),
        (8, "[NoFieldAccess]No field access", KeapPermanentError),
        (9, "[NoTableFound]No table", KeapPermanentError),
        (10, "[NoFieldFound]No field", KeapPermanentError),
        (11, "[NoFields]No fields", KeapPermanentError),
        (3, "[Unexpected]Something odd", KeapPermanentError),
        (0, "Failed to parse XML-RPC request: Premature end of file.", KeapPermanentError),
        (0, "No such handler: APIEmailService.sendTemplate", KeapPermanentError),
        (4, "[DatabaseError]Database unavailable", KeapTransientError),
        (
            3,
            "com.infusionsoft.throttle.ThrottlingException: Maximum number of threads throttled",
            KeapThrottledError,
        ),
    ],
)
def test_xmlrpc_faults(code: int, message: str, kind: type) -> None:
    error = classify_xmlrpc_fault("action_set.run", code, message)
    assert type(error) is kind
    assert error.operation == "action_set.run"
    assert f"fault {code}" in error.detail


def test_only_an_invalid_key_fault_counts_as_a_refused_token() -> None:
    invalid_key = classify_xmlrpc_fault("a", 2, "[InvalidKey]Invalid Key")
    no_access = classify_xmlrpc_fault("a", 14, "[NoAccess]No access")
    assert isinstance(invalid_key, KeapAuthError)
    assert invalid_key.token_rejected
    assert isinstance(no_access, KeapAuthError)
    assert not no_access.token_rejected


def test_unbracketed_auth_fault_codes_are_auth() -> None:
    assert isinstance(classify_xmlrpc_fault("a", 2, "Invalid Key"), KeapAuthError)


def test_duplicate_request_fault_is_retried_after_the_window() -> None:
    error = classify_xmlrpc_fault("contact.upsert_xmlrpc", 0, "Duplicate request detected")
    assert type(error) is KeapTransientError
    assert error.retry_after is not None
    assert error.retry_after >= 60


@pytest.mark.parametrize(
    ("status", "body", "oauth_error"),
    [
        (
            400,
            b'{"error": "invalid_grant", "error_description": "Invalid refresh token"}',
            "invalid_grant",
        ),
        (401, b'{"error": "invalid_client"}', "invalid_client"),
        (400, b'{"error": "unauthorized_client"}', "unauthorized_client"),
    ],
)
def test_oauth_refusals_are_auth(status: int, body: bytes, oauth_error: str) -> None:
    error = classify_http_error("oauth.refresh", status, {}, body)
    assert isinstance(error, KeapAuthError)
    assert error.oauth_error == oauth_error
    assert not error.token_rejected


def test_other_oauth_errors_are_permanent() -> None:
    error = classify_http_error("oauth.refresh", 400, {}, b'{"error": "unsupported_grant_type"}')
    assert type(error) is KeapPermanentError


def test_details_are_excerpts() -> None:
    error = classify_http_error("tags.add", 400, {}, b"x" * 100_000)
    assert len(error.detail) <= DETAIL_LIMIT
    assert str(error).startswith("tags.add: HTTP 400")


def test_html_error_pages_are_reduced_to_their_text() -> None:
    error = classify_http_error("tags.add", 502, {}, b"<html><h1>502 Bad Gateway</h1></html>")
    assert error.detail == "HTTP 502: 502 Bad Gateway"


def test_redact_removes_secrets_from_detail_and_str() -> None:
    error = classify_http_error("auth.probe", 401, {}, b'{"message": "bad key sekrit-123"}')
    error.redact(["sekrit-123"])
    assert "sekrit-123" not in str(error)
    assert "sekrit-123" not in repr(error)
    assert "[redacted]" in error.detail


@pytest.mark.parametrize(
    ("status", "body", "oauth_error", "shown"),
    [
        (
            400,
            b'{"error":"invalid_grant","error_description":"Invalid refresh token"}',
            "invalid_grant",
            "Invalid refresh token (invalid_grant)",
        ),
        (
            400,
            b'{"error":"invalid_request","error_description":"Invalid Refresh Token"}',
            "invalid_request",
            "Invalid Refresh Token (invalid_request)",
        ),
        (401, b'{"error":"invalid_client"}', "invalid_client", "invalid_client"),
        (400, b"", None, "HTTP 400"),
        (401, b"", None, "HTTP 401"),
        (404, b"<html>Not Found</html>", None, "Not Found"),
    ],
)
def test_every_token_endpoint_4xx_is_a_refused_credential_with_keaps_words(
    status: int, body: bytes, oauth_error: str | None, shown: str
) -> None:
    error = classify_token_error("oauth.refresh", status, {}, body)

    assert type(error) is KeapAuthError  # pauses delivery, never kills an event
    assert error.oauth_error == oauth_error
    assert shown in error.detail
    assert error.remedy == REAUTHORISE
    assert "relay keap login" in REAUTHORISE
    assert "RELAY_KEAP_REFRESH_TOKEN" in REAUTHORISE


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, KeapThrottledError), (500, KeapTransientError), (503, KeapTransientError)],
)
def test_token_endpoint_throttles_and_outages_stay_transient(
    status: int, kind: type[Exception]
) -> None:
    assert isinstance(classify_token_error("oauth.refresh", status, {}, b""), kind)


def test_apigees_invalid_access_token_fault_is_a_rejected_token_with_its_error_code() -> None:
    body = (
        b'{"fault":{"faultstring":"Invalid Access Token","detail":'
        b'{"errorcode":"keymanagement.service.invalid_access_token"}}}'
    )
    error = classify_http_error("tags.add", 401, {}, body)

    assert isinstance(error, KeapAuthError)
    assert error.token_rejected
    assert error.detail == (
        "HTTP 401: Invalid Access Token (keymanagement.service.invalid_access_token)"
    )
    assert error.remedy is None  # a refresh fixes this one; no person is needed


def test_a_403_is_forbidden_for_the_worker_to_judge() -> None:
    error = classify_http_error(
        "tags.add", 403, {}, b'{"code":403,"message":"User may not apply tag 666"}'
    )
    assert isinstance(error, KeapForbiddenError)
    assert not error.token_rejected
