"""docs/operations.md's table of metrics names every metric /metrics serves, and nothing
that it does not serve."""

from __future__ import annotations

import re
from pathlib import Path

from app.observability.metrics import Metrics

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def served() -> set[str]:
    """Each metric's name as a scrape shows it (a counter's with ``_total``)."""
    names = set()
    for metric in Metrics().registry.collect():
        names.add(f"{metric.name}_total" if metric.type == "counter" else metric.name)
    return names


def documented() -> set[str]:
    rows = re.findall(r"^\| `(relay_[a-z_]+)` \|", OPERATIONS.read_text(), re.M)
    return set(rows)


def test_every_metric_is_in_the_operations_table_and_no_other() -> None:
    assert served() == documented()
