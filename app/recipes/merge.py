"""``relay init`` on an existing relay.yaml: add the recipes' sources and routes to it as
text, so the user's own lines and comments stay exactly as they were.

Each new source (with its recipe's setup notes) goes at the end of the ``sources:``
section, its routes at the end of ``routes:``, indented like the user's. A sender whose
source or route names are already taken is left out and said so; the merged text is
parsed again and must hold the old file's sources and routes plus exactly the new ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from app.recipes.catalog import Recipe, RecipeError

_TOP_LEVEL = re.compile(r"^[^\s#-]")  # a key; "- " at column 0 is a list item


@dataclass
class MergeResult:
    text: str
    added: list[Recipe] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why each left-out sender was


def merge_recipes(text: str, recipes: Sequence[Recipe], *, name: str) -> MergeResult:
    """The file with the recipes added; RecipeError when it cannot be done as text."""
    before = _load(text, name)
    sources = dict(before.get("sources") or {})
    routes = list(before.get("routes") or [])
    route_names = {route.get("name") for route in routes if isinstance(route, dict)}
    result = MergeResult(text)
    for recipe in recipes:
        taken = [r.kind for r in recipe.routes if f"{recipe.name}-{r.kind}" in route_names]
        if recipe.name in sources:
            result.skipped.append(f"{recipe.name}: {name} already has a source named so")
        elif taken:
            names = ", ".join(f"{recipe.name}-{kind}" for kind in taken)
            result.skipped.append(f"{recipe.name}: {name} already has routes named {names}")
        else:
            result.added.append(recipe)
    if not result.added:
        return result
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    sources_text = "".join("\n" + r.header + r.sources_block for r in result.added)
    routes_text = "".join(f"  # --- {r.title} ---\n" + r.routes_block for r in result.added)
    lines = _append_to_section(lines, "sources", sources_text, name)
    lines = _append_to_section(lines, "routes", routes_text, name)
    result.text = "".join(lines)
    _check_merged(result, sources, routes, name)
    return result


def _load(text: str, name: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(
            f"{name} is not valid YAML ({exc}); fix it, then run init again"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise RecipeError(f"{name}: the top level must be a mapping with sources and routes")
    return document


def _append_to_section(lines: list[str], key: str, block: str, name: str) -> list[str]:
    """``lines`` with ``block`` (written for a two-space indent) at the end of ``key:``."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"{key}\s*:", line)), None)
    if start is None:
        return [*lines, f"\n{key}:\n", block]
    after_colon, hash_sign, comment = lines[start].split(":", 1)[1].partition("#")
    after_colon = after_colon.strip()
    if after_colon in ("{}", "[]", ""):
        kept = f"   {hash_sign}{comment.rstrip()}" if hash_sign else ""
        lines = [*lines[:start], f"{key}:{kept}\n", *lines[start + 1 :]]
    else:
        raise RecipeError(
            f"{name}: '{key}:' is written inline ({after_colon[:40]}); write it as a block "
            "(one entry per line) and run init again, or use --output to write a new file"
        )
    end = next((i for i in range(start + 1, len(lines)) if _TOP_LEVEL.match(lines[i])), len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1  # before the blank lines and comments that lead into the next section
    indent = _child_indent(lines[start + 1 : end])
    return [*lines[:end], _reindent(block, indent), *lines[end:]]


def _child_indent(section: list[str]) -> int:
    for line in section:
        stripped = line.lstrip(" ")
        if stripped.strip() and not stripped.startswith("#"):
            return len(line) - len(stripped)
    return 2


def _reindent(block: str, indent: int) -> str:
    shift = indent - 2
    if shift == 0:
        return block
    out = []
    for line in block.splitlines(keepends=True):
        if line.startswith("  "):
            line = " " * shift + line if shift > 0 else line[-shift:]
        out.append(line)
    return "".join(out)


def _check_merged(
    result: MergeResult, sources: dict[str, Any], routes: list[Any], name: str
) -> None:
    merged = _load(result.text, name)
    expected_sources = [*sources, *(r.name for r in result.added)]
    expected_routes = [
        *(route.get("name") for route in routes if isinstance(route, dict)),
        *(f"{r.name}-{route.kind}" for r in result.added for route in r.routes),
    ]
    got_routes = [route.get("name") for route in merged.get("routes") or []]
    if list(merged.get("sources") or {}) != expected_sources or got_routes != expected_routes:
        raise RecipeError(
            f"{name}: could not add the recipes without changing its meaning (its layout is "
            "unusual); write them elsewhere with --output and merge by hand"
        )
    unchanged = all(merged["sources"][old] == sources[old] for old in sources)
    if not unchanged or merged["routes"][: len(routes)] != routes:
        raise RecipeError(f"{name}: adding the recipes would change what is there already")
