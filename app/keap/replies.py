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
    classify_xmlrpc_brownout,
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


# -- answers that report, inside a 2xx, that the call did not do what was asked --------
# Raised while the exchange is still being traced, so the step's history shows the call
# itself as failed, with Keap's words.


def read_action_set_results(operation: str, reply: Reply) -> list[dict[str, Any]]:
    """``runActionSequence``: a list of ``{Action, Message, IsError}``, one per action.

    The error flag's casing differs between sources (``IsError``, ``isError``): read any.
    """
    results = read_xmlrpc(operation, reply)
    if not isinstance(results, list):
        raise KeapPermanentError(operation, f"expected a list of results, got {_kind(results)}")
    failed = [r for r in results if isinstance(r, dict) and _is_true(_any_case(r, "iserror"))]
    if failed:
        reasons = "; ".join(f"{_any_case(r, 'action')}: {_any_case(r, 'message')}" for r in failed)
        raise KeapPermanentError(operation, f"the action set reported errors: {reasons}")
    return results


# The v1 statuses (KeapArchive/infusionsoft-sdk-nodejs, docs/Entrylongstring.md):
# SUCCESS, DUPLICATE (already applied), CONTACT_NOT_FOUND, TAG_ID_NOT_FOUND, FAILURE.
_TAG_APPLIED = frozenset({"SUCCESS", "DUPLICATE"})


def read_tag_results(operation: str, reply: Reply) -> None:
    """``POST /v1/contacts/{id}/tags``: 200 with a status per tag, which can be a failure.

    The v1 reference gives the answer as entries of tag id → status (as a JSON object, or
    a list of one-key objects as Java's Map.Entry serialises); v2 ``:applyTags`` wraps
    them in ``{"results": {…}}``. An empty answer has no status to contradict the 200.
    """
    expect_success(operation, reply)
    if not reply.body.strip():
        return
    statuses = _tag_statuses(read_json(operation, reply))
    if statuses is None:
        raise KeapPermanentError(
            operation, "the answer holds no per-tag statuses", status_code=reply.status
        )
    failed = {tag: status for tag, status in statuses.items() if status.upper() not in _TAG_APPLIED}
    if failed:
        listed = ", ".join(f"tag {tag}: {status}" for tag, status in failed.items())
        raise KeapPermanentError(
            operation, f"Keap did not apply every tag ({listed})", status_code=reply.status
        )


def goal_results_reader(
    integration: str, call_name: str
) -> Callable[[str, Reply], list[dict[str, Any]]]:
    """A reader for an API goal's answer: v1's list of ``{campaign_id, goal_id, message,
    success}`` or v2's ``{"results": [...]}``; a goal that started nothing is a failure."""

    def read(operation: str, reply: Reply) -> list[dict[str, Any]]:
        payload = read_json(operation, reply)
        if isinstance(payload, dict) and "results" in payload:
            payload = payload["results"]
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise KeapPermanentError(
                operation, f"expected a list of goal results, got {_kind(payload)}"
            )
        if not any(_is_true(r.get("success")) for r in payload):
            said = "; ".join(str(r["message"]) for r in payload if r.get("message"))
            raise KeapPermanentError(
                operation,
                f"goal {integration}/{call_name} fired no campaign: check the goal's "
                "integration and call name in Keap's campaign builder"
                + (f" (Keap: {said})" if said else ""),
                status_code=reply.status,
            )
        return payload

    return read


def _tag_statuses(payload: Any) -> dict[str, str] | None:
    if isinstance(payload, dict) and isinstance(payload.get("results"), dict):
        payload = payload["results"]
    if isinstance(payload, list) and all(isinstance(entry, dict) for entry in payload):
        payload = {key: value for entry in payload for key, value in entry.items()}
    if not isinstance(payload, dict):
        return None
    return {str(tag): str(status) for tag, status in payload.items()}


def _any_case(record: dict[str, Any], name: str) -> Any:
    return next((value for key, value in record.items() if key.lower() == name), None)


def _is_true(value: Any) -> bool:
    """A true flag in any of the forms XML-RPC and JSON answers carry it (True, 1, "true")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or (isinstance(value, int) and value == 1)


def _kind(value: Any) -> str:
    return type(value).__name__


def read_after_sunset(
    operation: str, reply: Reply, *, read: Callable[[str, Reply], Any], sunset: date
) -> Any:
    """``read`` (an XML-RPC reader) once the XML-RPC sunset date has passed: an answer that
    is not XML-RPC is the retired API (permanent), no longer a brownout (transient)."""
    retired = classify_retired_xmlrpc(operation, reply.status, reply.body, sunset)
    if retired is not None:
        raise retired
    return read(operation, reply)


def read_before_sunset(operation: str, reply: Reply, *, read: Callable[[str, Reply], Any]) -> Any:
    """``read`` (an XML-RPC reader) up to the XML-RPC sunset date: a 4xx that is not
    XML-RPC is a brownout (transient), however it would read otherwise."""
    brownout = classify_xmlrpc_brownout(operation, reply.status, reply.body)
    if brownout is not None:
        raise brownout
    return read(operation, reply)
