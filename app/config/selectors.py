"""JMESPath selectors, compiled once when relay.yaml is loaded.

Every selector in relay.yaml runs over the same document: ``{"headers": {...},
"body": ..., "query": {...}}`` with lower-case header names.
"""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult


class Selector:
    """A compiled JMESPath expression that never raises while searching."""

    __slots__ = ("_parsed", "expression")

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str) or not expression.strip():
            raise ValueError("a selector must be a non-empty JMESPath expression")
        try:
            self._parsed: ParsedResult = jmespath.compile(expression)
        except JMESPathError as exc:
            raise ValueError(f"invalid JMESPath {expression!r}: {_first_line(exc)}") from None
        self.expression = expression

    def search(self, document: Any) -> Any:
        """The value the expression selects, or None when it selects nothing or fails."""
        try:
            return self._parsed.search(document)
        except JMESPathError:
            return None

    def __repr__(self) -> str:
        return f"Selector({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
