"""``relay recipes`` (list the shipped sender recipes) and ``relay init`` (write a
relay.yaml from some of them, and say which secrets to put in .env)."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from app.recipes.catalog import Recipe, RecipeError, compose_config, load_all, load_recipe
from app.recipes.merge import merge_recipes
from app.settings import Settings


def print_recipes(settings: Settings, args: argparse.Namespace) -> int:
    """One block per recipe: its name, how it is verified, and the events it routes."""
    for recipe in load_all():
        print(f"{recipe.name:<16}{recipe.title} ({_how_verified(recipe)})")
        for route in recipe.routes:
            print(f"{'':<16}  {route.kind:<13} {route.event}")
    print()
    print("PayPal is not supported: its webhooks are verified only by calling PayPal's API.")
    print("Write a relay.yaml from some of these with: relay init SENDER [SENDER...]")
    return 0


def write_config(settings: Settings, args: argparse.Namespace) -> int:
    """Write the named recipes as one relay.yaml, or add them to the existing one (its
    lines and comments kept), and print the .env lines their secrets need, then the next
    steps."""
    output = Path(args.output) if args.output is not None else Path(settings.config)
    names = list(dict.fromkeys(name.strip().lower() for name in args.senders))
    command = "relay init " + " ".join(names)
    try:
        recipes = [load_recipe(name) for name in names]
        if output.exists():
            recipes = _add_to_existing(output, recipes, command)
            if not recipes:
                return 0
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("x", encoding="utf-8") as file:  # "x": never overwrite
                file.write(compose_config(recipes, command=command))
            print(f"wrote {output}: {', '.join(r.title for r in recipes)}")
    except RecipeError as exc:
        print(f"relay init: {exc}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        print(f"relay init: cannot write {output}: {reason}", file=sys.stderr)
        return 2
    _print_next_steps(output, recipes)
    return 0


def _add_to_existing(output: Path, recipes: list[Recipe], command: str) -> list[Recipe]:
    """Merge into ``output`` (replaced atomically); the recipes added, having said what
    was added and what was left out."""
    result = merge_recipes(output.read_text(encoding="utf-8"), recipes, name=str(output))
    for reason in result.skipped:
        print(f"relay init: left out {reason}", file=sys.stderr)
    if not result.added:
        print(f"relay init: nothing added to {output}", file=sys.stderr)
        return []
    temporary = output.with_name(f".{output.name}.relay-init")
    temporary.write_text(result.text, encoding="utf-8")
    temporary.replace(output)
    print(f"added to {output} (by {command}; nothing already there was changed):")
    for recipe in result.added:
        routes = ", ".join(f"{recipe.name}-{route.kind}" for route in recipe.routes)
        print(f"  source {recipe.name}, routes {routes}")
    return result.added


def _how_verified(recipe: Recipe) -> str:
    if recipe.scheme == "token":
        where = "?token= in the URL" if recipe.token_at == "query.token" else recipe.token_at
        return f"shared token: {where}"
    return f"signed: {recipe.scheme}"


def _print_next_steps(output: Path, recipes: list[Recipe]) -> None:
    print()
    print("Add these lines to .env (or set them in the environment):")
    chosen: dict[str, str] = {}
    for recipe in recipes:
        for secret in recipe.secrets:
            if secret.user_chosen:
                chosen[secret.name] = secrets.token_urlsafe(24)
                print(f"{secret.name}={chosen[secret.name]}")
                print(f"#   ^ generated for you: {secret.hint}")
            else:
                print(f"{secret.name}=")
                print(f"#   ^ fill in: {secret.hint}")
    print()
    print("Then, in each sender, paste its URL (replace <relay> with this relay's address):")
    for recipe in recipes:
        url = f"https://<relay>/hooks/{recipe.name}"
        if recipe.scheme == "token" and recipe.token_at == "query.token":
            token = next((s.name for s in recipe.secrets if s.user_chosen), None)
            url += f"?token={chosen.get(token, '<token>') if token else '<token>'}"
        print(f"  {recipe.title}: {url}")
    print()
    print("Next steps:")
    print(f"  1. replace the placeholder ids: grep -n TODO-ID {output}")
    print("  2. relay check        (validates the file and the secrets, prints every route)")
    print("  3. relay sandbox      (try it against a fake Infusionsoft: docs/sandbox.md)")
    print("  4. relay serve")
    print(f"Each sender's clicks are in the comments of {output}.")
