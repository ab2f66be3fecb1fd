"""Every file path the docs name in backticks exists: a module that moves (issue 16 moved
the store, the fake Infusionsoft and the worker's parts) must take its docs with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# `app/store/store.py`, `fake_keap/`, `tests/store/test_durability.py` ...; a path with a
# glob, a placeholder or a line suffix is not a file name and is left alone.
PATH = re.compile(r"`((?:app|fake_keap|devkit|bench|tests|caddy|docs)/[\w./-]*)`")


def named_paths(doc: Path) -> list[str]:
    return [m for m in PATH.findall(doc.read_text(encoding="utf-8")) if "*" not in m]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = [p for p in named_paths(doc) if not (ROOT / p.rstrip("/")).exists()]
    assert missing == [], f"{doc.name} names paths that do not exist: {missing}"


def test_the_check_sees_the_register() -> None:
    assert "app/api/hook_dispatch.py" in named_paths(ROOT / "docs" / "performance.md")
