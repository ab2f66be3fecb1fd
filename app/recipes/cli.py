"""``relay recipes`` (list the shipped sender recipes) and ``relay init`` (write a
relay.yaml from some of them, and say which secrets to put in .env)."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from app.recipes.catalog import Recipe, RecipeError, compose_config, load_all, load_recipe
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
    """Write the named recipes as one relay.yaml (never over an existing file) and print
    the .env lines their secrets need, then the next steps."""
    output = Path(args.output) if args.output is not None else Path(settings.config)
    names = list(dict.fromkeys(name.strip().lower() for name in args.senders))
    try:
        recipes = [load_recipe(name) for name in names]
    except RecipeError as exc:
        print(f"relay init: {exc}", file=sys.stderr)
        return 2
    text = compose_config(recipes, command="relay init " + " ".join(names))
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("x", encoding="utf-8") as file:  # "x": never overwrite
            file.write(text)
    except FileExistsError:
        print(
            f"relay init: {output} already exists; not overwriting it. Move it away, or "
            "write elsewhere with --output.",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"relay init: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    _print_next_steps(output, recipes)
    return 0


def _how_verified(recipe: Recipe) -> str:
    if recipe.scheme == "token":
        where = "?token= in the URL" if recipe.token_at == "query.token" else recipe.token_at
        return f"shared token: {where}"
    return f"signed: {recipe.scheme}"


def _print_next_steps(output: Path, recipes: list[Recipe]) -> None:
    print(f"wrote {output}: {', '.join(r.title for r in recipes)}")
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
    print("  3. relay serve")
    print(f"Each sender's clicks are in the comments of {output}.")
