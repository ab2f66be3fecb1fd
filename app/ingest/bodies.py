"""Turn a webhook's raw body into the ``body`` that selectors read (SPEC §2 "Bodies").

JSON (an object or an array: the caller splits arrays), or form-encoded with PHP-style
nested keys (``customer[email]``, ``items[0][sku]``, ``tags[]``). A body without a usable
Content-Type, or labelled form-encoded but holding JSON, is sniffed. Form values stay
strings.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from app.errors import BadRequest

MAX_FORM_DEPTH = 32
MAX_FORM_KEYS = 10_000

_JSON_TYPES = frozenset({"application/json", "text/json"})
_FORM_TYPE = "application/x-www-form-urlencoded"
# RFC 9110 media type: token "/" token. Anything else is treated as if no header came.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_BRACKETED = re.compile(r"\[([^\]]*)\]")
# Keys PHP treats as integers; longer digit strings stay text (and int() stays cheap).
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")
_UTF8_BOM = b"\xef\xbb\xbf"
# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): only such an escape can put a
# surrogate into a parsed string (raw surrogate bytes are not UTF-8). Pairs become one
# character; a lone one is half a character, which no UTF-8 text (nor PostgreSQL) holds.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BodyError(BadRequest):
    """A body we cannot read (HTTP 400); the message is safe to show the sender."""

    @property
    def status(self) -> int:
        return self.status_code


class UnsupportedBody(BodyError):
    """A content type the relay does not take (HTTP 415)."""

    status_code = 415
    title = "Unsupported Media Type"
    slug = "unsupported-media-type"


class UnstorableJson(BodyError):
    """Valid JSON holding a value the relay cannot store as sent (HTTP 400): not to be
    read as a form instead."""


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """The parsed body: a dict, or a list for a JSON array. An empty body is ``{}``."""
    if not raw.strip():
        return {}
    media_type = _media_type(content_type)
    if media_type is None:
        return _sniff(raw)
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return parse_json(raw)
    if media_type == _FORM_TYPE:
        return _sniff(raw)  # a WordPress plugin labels JSON as form-encoded
    if media_type == "multipart/form-data":
        raise UnsupportedBody("multipart/form-data is not supported: send JSON or form-encoded")
    raise UnsupportedBody(f"content type {media_type} is not supported: send JSON or form-encoded")


def parse_json(raw: bytes) -> dict[str, Any] | list[Any]:
    """A JSON object or array from UTF-8 bytes; anything else is a BodyError."""
    try:
        text = raw.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not valid JSON: invalid UTF-8 at byte {exc.start}") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN / Infinity, which stored JSON could not hold
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BodyError("body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict | list):
        raise BodyError("body is JSON but not an object or an array")
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw):  # rare: only then look closer
        _refuse_lone_surrogates(value)
    return value


def _refuse_lone_surrogates(value: Any) -> None:
    """UnstorableJson naming the first string (or key) holding a lone UTF-16 surrogate.

    RFC 8259 §8.2 lets a JSON string escape one (``"Ada \\ud83d"``: a sender cut a
    name mid-emoji), and leaves what it means unpredictable. It is not a character:
    UTF-8 — our storage, PostgreSQL's text, Infusionsoft's API — cannot hold it. The
    relay refuses the webhook, with the place named, instead of storing something else
    than was sent (docs/operations.md, "What the relay refuses to store")."""
    stack: list[tuple[str, Any]] = [("body", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                _check_text(key, f"a key of {path}")
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise UnstorableJson(
            f"body cannot be stored: {path[:200]} holds a lone UTF-16 surrogate "
            f"(\\u{code:04x} at character {exc.start}), half of a character; send the "
            "whole character (a surrogate pair) or none"
        ) from None


def parse_form(raw: bytes | str) -> dict[str, Any]:
    """``application/x-www-form-urlencoded`` with PHP's nested keys; values stay strings."""
    # Latin-1 senders exist: a stray byte becomes U+FFFD rather than refusing the event.
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")
    if len(pairs) > MAX_FORM_KEYS:
        raise BodyError(f"form has more than {MAX_FORM_KEYS} fields")
    root = _FormNode()
    for name, value in pairs:
        path = _key_path(name)
        if path:
            _assign(root, path, value)
    # The top level stays an object even with keys 0, 1…: a list would be split into events.
    return {key: _lists_from_indexes(child) for key, child in root.items()}


def parse_query(query_string: str) -> dict[str, Any]:
    """A URL query string, read with the same rules as a form body."""
    return parse_form(query_string)


def _media_type(content_type: str | None) -> str | None:
    """``type/subtype`` in lower case, or None when the header is absent or unparsable."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type if _MEDIA_TYPE.fullmatch(media_type) else None


def _sniff(raw: bytes) -> Any:
    """JSON when the body is a JSON object or array, else a form."""
    if raw.lstrip(b" \t\r\n" + _UTF8_BOM)[:1] in (b"{", b"["):
        try:
            return parse_json(raw)
        except UnstorableJson:
            raise
        except BodyError:
            pass  # a form that happens to start with a bracket
    return parse_form(raw)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_float(text: str) -> float:
    """Numbers are IEEE 754 doubles (RFC 8259 §6); one past their range would become
    infinity, which stored JSON cannot hold (it would turn into null): refused."""
    value = float(text)
    if math.isinf(value):
        raise UnstorableJson(
            f"body cannot be stored: the number {text[:40]} is beyond the range of a "
            "double (RFC 8259 §6)"
        )
    return value


def _key_path(name: str) -> list[str]:
    """``a[b][]`` → ["a", "b", ""]: PHP's reading of a field name ([] on its own is an append).

    A name with an empty base (``=x``, ``[a]=x``) is dropped, as PHP does; an unclosed
    bracket leaves the whole name a plain key; text after the last ``]`` is ignored.
    """
    name = name.lstrip(" ")
    base, bracket, _ = name.partition("[")
    if not base:
        return []
    if not bracket:
        return [name]
    segments: list[str] = []
    position = len(base)
    while match := _BRACKETED.match(name, position):
        segments.append(match.group(1))
        position = match.end()
    if not segments:
        return [name]
    if len(segments) > MAX_FORM_DEPTH:
        raise BodyError(f"a form field is nested more than {MAX_FORM_DEPTH} levels deep")
    return [base, *segments]


class _FormNode(dict[str, Any]):
    """An object being built from form fields; remembers where ``[]`` appends next."""

    __slots__ = ("next_index",)

    def __init__(self) -> None:
        super().__init__()
        self.next_index = 0  # one past the largest integer key, as in PHP

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        if _INDEX.fullmatch(key):
            self.next_index = max(self.next_index, int(key) + 1)


def _assign(root: _FormNode, path: list[str], value: str) -> None:
    """Set ``value`` at ``path``; where a shape conflicts, the later field wins."""
    node = root
    for depth, segment in enumerate(path):
        key = str(node.next_index) if segment == "" else segment  # "[]" appends
        if depth == len(path) - 1:
            node.put(key, value)
            return
        child = node.get(key)
        if not isinstance(child, _FormNode):
            child = _FormNode()
            node.put(key, child)
        node = child


def _lists_from_indexes(node: Any) -> Any:
    """Objects whose keys are exactly 0…n-1 become lists in index order, recursively;
    every object becomes a plain dict."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexes(child) for key, child in node.items()}
    if converted and all(_INDEX.fullmatch(key) for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(index)] for index in indexes]
    return converted


# Built once: json.loads with a keyword argument builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_parse_float)
