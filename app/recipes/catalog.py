"""Load the recipes shipped in ``app/recipes/senders`` and compose them into a relay.yaml.

A recipe is a small relay.yaml kept as text, so that ``relay init`` can hand the user its
comments (where to click in the sender, what each TODO-ID is) along with the config:

    # Title — what it covers                      <- first line: the title before " — "
    # ...setup notes...
    # env NAME: hint                              <- a secret the sender gives you
    # env NAME (you choose): hint                 <- a token you invent (init makes one)
    sources:
      <name>:                                     <- exactly one source, named after the file
        ...
    routes:
      - name: <name>-<kind>                       <- purchase, refund, cancellation, signup...
        ...
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

_SENDERS_PACKAGE = "app.recipes"
_SENDERS_FOLDER = "senders"
_ENV_LINE = re.compile(r"#\s*env\s+([A-Z][A-Z0-9_]*)\s*(\(you choose\))?\s*:\s*(.+)")


class RecipeError(Exception):
    """A recipe is unknown, or a shipped recipe file is malformed."""


@dataclass(frozen=True)
class SecretHint:
    """An environment variable a recipe's ``${NAME}`` needs, and where its value comes from."""

    name: str
    hint: str
    user_chosen: bool  # a token the user invents and puts in the sender's URL or form


@dataclass(frozen=True)
class RouteSummary:
    kind: str  # the route name without the "<sender>-" prefix: purchase, refund, ...
    event: str
    when: str | None


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    header: str  # the comment block above ``sources:``
    sources_block: str  # the indented lines under ``sources:``
    routes_block: str  # the indented lines under ``routes:``
    secrets: tuple[SecretHint, ...]
    routes: tuple[RouteSummary, ...]
    scheme: str
    token_at: str | None  # for scheme token: where the token goes (query.token, body.…)

    @property
    def text(self) -> str:
        return f"{self.header}sources:\n{self.sources_block}routes:\n{self.routes_block}"


def recipe_names() -> list[str]:
    """Every shipped recipe, alphabetically."""
    folder = resources.files(_SENDERS_PACKAGE).joinpath(_SENDERS_FOLDER)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def load_recipe(name: str) -> Recipe:
    """The recipe called ``name``; RecipeError naming the known ones if there is none."""
    known = recipe_names()
    if name not in known:
        raise RecipeError(f"no recipe named {name!r} (recipes: {', '.join(known)})")
    resource = resources.files(_SENDERS_PACKAGE).joinpath(_SENDERS_FOLDER, f"{name}.yaml")
    return parse_recipe(name, resource.read_text(encoding="utf-8"))


def load_all() -> list[Recipe]:
    return [load_recipe(name) for name in recipe_names()]


def parse_recipe(name: str, text: str) -> Recipe:
    header, sources_block, routes_block = _split_blocks(name, text)
    document = yaml.safe_load(text)
    sources = document.get("sources") or {}
    if list(sources) != [name]:
        raise RecipeError(f"recipe {name}: needs exactly one source, named {name!r}")
    verify = sources[name].get("verify") or {}
    routes = tuple(_summarise_route(name, route) for route in document.get("routes") or [])
    title = header.splitlines()[0].lstrip("# ").split(" — ")[0].strip() if header else name
    return Recipe(
        name=name,
        title=title,
        header=header,
        sources_block=sources_block,
        routes_block=routes_block,
        secrets=tuple(_secret_hints(name, header, text)),
        routes=routes,
        scheme=str(verify.get("scheme")),
        token_at=verify.get("at"),
    )


def compose_config(recipes: Sequence[Recipe], command: str) -> str:
    """One relay.yaml from several recipes, their comments kept: each recipe's setup notes
    sit above its source, and its routes follow the routes of the recipes before it."""
    titles = ", ".join(recipe.title for recipe in recipes)
    lines = [
        f"# relay.yaml — written by `{command}` for: {titles}.",
        "# Secrets are ${NAME} references: set them in the environment or in .env.",
        "# Replace every placeholder id marked TODO-ID (grep -n TODO-ID relay.yaml) with",
        "# your own Infusionsoft ids, then run `relay check`.",
        "",
        "sources:",
    ]
    text = "\n".join(lines) + "\n"
    for recipe in recipes:
        text += "\n" + recipe.header + recipe.sources_block
    text += "\nroutes:\n"
    for recipe in recipes:
        text += f"  # --- {recipe.title} ---\n" + recipe.routes_block
    return text


def _split_blocks(name: str, text: str) -> tuple[str, str, str]:
    """(header comments, lines under ``sources:``, lines under ``routes:``)."""
    lines = text.splitlines(keepends=True)
    top_level = [i for i, line in enumerate(lines) if line[:1] not in ("", " ", "#", "\n")]
    keys = [lines[i].rstrip() for i in top_level]
    if keys != ["sources:", "routes:"]:
        raise RecipeError(
            f"recipe {name}: needs exactly a top-level 'sources:' then 'routes:', found {keys}"
        )
    sources_at, routes_at = top_level
    return (
        "".join(lines[:sources_at]),
        "".join(lines[sources_at + 1 : routes_at]),
        "".join(lines[routes_at + 1 :]),
    )


def _summarise_route(sender: str, route: dict[str, Any]) -> RouteSummary:
    name = str(route.get("name", ""))
    if not name.startswith(f"{sender}-"):
        raise RecipeError(f"recipe {sender}: route {name!r} must be named {sender}-<kind>")
    when = route.get("when")
    return RouteSummary(
        kind=name.removeprefix(f"{sender}-"),
        event=str(route.get("event")),
        when=str(when) if when is not None else None,
    )


def _secret_hints(name: str, header: str, text: str) -> list[SecretHint]:
    hints = {}
    for line in header.splitlines():
        if match := _ENV_LINE.match(line.strip()):
            variable, chosen, hint = match.groups()
            hints[variable] = SecretHint(variable, hint.strip(), user_chosen=bool(chosen))
    used = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)
    missing = [variable for variable in used if variable not in hints]
    if missing:
        raise RecipeError(f"recipe {name}: no '# env {missing[0]}: …' line for ${{{missing[0]}}}")
    return [hints[variable] for variable in dict.fromkeys(used)]
