"""Reading a Keap answer: each reader returns the payload of a good answer or raises the
classified KeapError for anything else (``app.keap.errors`` decides which)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from app.keap.errors import (
    KeapPermanentError,
    classify_http_error,
    classify_retired_xmlrpc,
    classify_unexpected_body,
    classify_xmlrpc_fault,
)
from app.keap.exchange import MAX_RESPONSE_BYTES, Reply
from app.keap.xmlrpc import XmlRpcDecodeError, XmlRpcFault, decode_response


def expect_success(operation: str, reply: Reply) -> None:
    if not reply.ok:
        raise classify_http_error(operation, reply.status, reply.headers, reply.body)


def read_json(operation: str, reply: Reply) -> Any:
    expect_success(operation, reply)
    if reply.truncated:
        raise KeapPermanentError(
            operation,
            f"the answer is larger than {MAX_RESPONSE_BYTES} bytes",
            status_code=reply.status,
        )
    try:
        return json.loads(reply.body)
    except ValueError:
        raise classify_unexpected_body(
            operation, reply.status, reply.body, expected="json", problem="the answer is not JSON"
        ) from None


def read_xmlrpc(operation: str, reply: Reply) -> Any:
    expect_success(operation, reply)
    problem = f"the answer is larger than {MAX_RESPONSE_BYTES} bytes" if reply.truncated else None
    if problem is None:
        try:
            return decode_response(reply.body)
        except XmlRpcFault as fault:
            raise classify_xmlrpc_fault(operation, fault.code, fault.message) from None
        except XmlRpcDecodeError as exc:
            problem = str(exc)
    raise classify_unexpected_body(
        operation, reply.status, reply.body, expected="xmlrpc", problem=problem
    )


def read_after_sunset(
    operation: str, reply: Reply, *, read: Callable[[str, Reply], Any], sunset: date
) -> Any:
    """``read`` (an XML-RPC reader) once the XML-RPC sunset date has passed: an answer that
    is not XML-RPC is the retired API (permanent), no longer a brownout (transient)."""
    retired = classify_retired_xmlrpc(operation, reply.status, reply.body, sunset)
    if retired is not None:
        raise retired
    return read(operation, reply)
