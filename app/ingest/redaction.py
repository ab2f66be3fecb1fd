"""Keep a ``token`` source's shared secret out of everything stored about a webhook.

The secret may come back in any part of the request, in any spelling: plainly, inside a
longer string (``"note": "token=… sent"``), as an object key, percent-encoded in either
case (a URL in a ``Referer`` header or inside a JSON string), with JSON ``\\u`` escapes
(JSON held in a string), or as HTML character references. Each string is decoded as
long as it holds an escape, and every spelling found becomes ``[redacted]``.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus

from app.observability.secrets import REDACTED

# How many layers of encoding are peeled off one string (a URL in a JSON string in a
# form field is three).
_LAYERS = 4
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|([\"\\/bfnrt]))")
_JSON_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class Redactor:
    """Redaction of one secret; made once per secret (``redactor_for``)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._raw = secret.encode("utf-8", "surrogatepass")

    def may_be_in(self, raw: bytes | str) -> bool:
        """Whether ``raw`` can hold the secret in some spelling (False: no need to look)."""
        if isinstance(raw, str):
            return self.secret in raw or _has_escape(raw)
        return self._raw in raw or b"%" in raw or b"\\" in raw or b"&" in raw

    def text(self, value: str) -> str:
        """``value`` with every spelling of the secret replaced."""
        if not self.may_be_in(value):
            return value
        for _ in range(_LAYERS):
            value = value.replace(self.secret, REDACTED)
            hidden = next((v for v in _decodings(value) if self.secret in v), None)
            if hidden is None:
                return value
            value = hidden  # decoded, so that the spelling found can be replaced
        return REDACTED if any(self.secret in v for v in _decodings(value)) else value

    def value(self, value: Any) -> Any:
        """A parsed body or query with the secret redacted in every key and string."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {name: self.text(value) for name, value in headers.items()}


@functools.lru_cache(maxsize=256)
def redactor_for(secret: str) -> Redactor:
    return Redactor(secret)


def _has_escape(text: str) -> bool:
    return "%" in text or "\\" in text or "&" in text or "+" in text


def _decodings(text: str) -> Iterator[str]:
    """``text`` with one layer of each escaping it shows undone."""
    if "%" in text or "+" in text:
        yield unquote(text, errors="replace")
        yield unquote_plus(text, errors="replace")
    if "\\" in text:
        yield _JSON_ESCAPE.sub(_unescape_json, text)
    if "&" in text:
        yield html.unescape(text)


def _unescape_json(match: re.Match[str]) -> str:
    if match.group(1):
        return chr(int(match.group(1), 16))
    return _JSON_SIMPLE.get(match.group(2), match.group(2))
