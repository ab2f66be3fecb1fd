"""The one error base of the relay: every error a client can see is a RelayError.

A RelayError becomes an ``application/problem+json`` answer in one exception handler
(``app.http.problems``). Messages must never contain secrets.
"""

from __future__ import annotations


class RelayError(Exception):
    status_code: int = 500
    title: str = "Internal Server Error"
    slug: str = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(RelayError):
    status_code = 400
    title = "Bad Request"
    slug = "bad-request"


class Unauthorized(RelayError):
    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(RelayError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(RelayError):
    status_code = 404
    title = "Not Found"
    slug = "not-found"


class MethodNotAllowed(RelayError):
    """``allow`` is the ``Allow`` header the answer carries (RFC 9110 requires one)."""

    status_code = 405
    title = "Method Not Allowed"
    slug = "method-not-allowed"

    def __init__(self, detail: str, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow


class RequestTimeout(RelayError):
    """The request did not arrive in time, or its sender went away before it was whole."""

    status_code = 408
    title = "Request Timeout"
    slug = "request-timeout"


class HeadersTooLarge(RelayError):
    status_code = 431
    title = "Request Header Fields Too Large"
    slug = "headers-too-large"


class TooManyRequests(RelayError):
    status_code = 429
    title = "Too Many Requests"
    slug = "too-many-requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(RelayError):
    status_code = 413
    title = "Payload Too Large"
    slug = "payload-too-large"


class UnsupportedMediaType(RelayError):
    status_code = 415
    title = "Unsupported Media Type"
    slug = "unsupported-media-type"


class ServiceUnavailable(RelayError):
    status_code = 503
    title = "Service Unavailable"
    slug = "unavailable"


class ConfigError(Exception):
    """A bad relay.yaml or environment: carries every problem, each naming file, path, reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
