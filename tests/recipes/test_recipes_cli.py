"""The shipped recipes are well-formed, `relay recipes` lists them, and `relay init`
writes a relay.yaml that `relay check` accepts once the secrets are set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import main
from app.config.loader import parse_config
from app.recipes.catalog import Recipe, compose_config, load_all, recipe_names
from tests.recipes.delivery import TEST_ENV

SENDERS = [
    "clickfunnels", "gumroad", "kajabi", "lemonsqueezy", "membermouse", "memberpress",
    "paddle", "pmpro", "samcart", "shopify", "stripe", "teachable", "thinkific",
    "thrivecart", "wishlistmember", "woocommerce",
]  # fmt: skip


def test_one_recipe_per_supported_sender() -> None:
    assert recipe_names() == SENDERS


@pytest.mark.parametrize("recipe", load_all(), ids=lambda recipe: recipe.name)
def test_recipe_is_well_formed(recipe: Recipe) -> None:
    config = parse_config(recipe.text, TEST_ENV, name=f"{recipe.name}.yaml")
    assert list(config.sources) == [recipe.name]
    assert f"https://<relay>/hooks/{recipe.name}" in recipe.header
    for route in config.routes:
        assert route.name.startswith(f"{recipe.name}-")
        # An event without an email matches no route (stored as ignored), never a dead event.
        assert route.when is not None, route.name
        assert route.contact.email.expression in route.when.expression, route.name
    for line in recipe.text.splitlines():
        if re.search(r"\b[1-4]{6}\b", line) and not line.lstrip().startswith("#"):
            assert "# TODO-ID:" in line, line
    assert {s.name for s in recipe.secrets} == set(re.findall(r"\$\{(\w+)\}", recipe.text))


def test_all_recipes_combine_into_one_valid_config() -> None:
    recipes = load_all()
    config = parse_config(compose_config(recipes, command="relay init ..."), TEST_ENV)
    assert list(config.sources) == SENDERS
    assert len(config.routes) == sum(len(r.routes) for r in recipes)


def test_relay_recipes_lists_each_recipe_and_its_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for recipe in load_all():
        assert recipe.name in out
        for route in recipe.routes:
            assert route.event in out
    assert "PayPal is not supported" in out


def test_init_then_check_accepts_the_file_once_secrets_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAY_CONFIG", str(tmp_path / "relay.yaml"))
    assert main(["init", "thrivecart", "shopify"]) == 0
    printed = capsys.readouterr().out
    assert "THRIVECART_SECRET=\n" in printed and "SHOPIFY_SECRET=\n" in printed
    assert "relay check" in printed

    assert main(["check"]) == 2  # the secrets are not set yet
    assert "THRIVECART_SECRET is not set" in capsys.readouterr().err

    monkeypatch.setenv("THRIVECART_SECRET", "word")
    monkeypatch.setenv("SHOPIFY_SECRET", "shpss_x")
    assert main(["check"]) == 0
    plan = capsys.readouterr().out
    assert "thrivecart: POST /hooks/thrivecart" in plan and "shopify-purchase:" in plan
    text = (tmp_path / "relay.yaml").read_text()
    assert text.count("TODO-ID") >= 7 and "Settings > API & Webhooks" in text


def test_init_secrets_from_dotenv_pass_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed .env lines, filled in, are all `relay check` needs; tokens the user
    chooses come generated."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "samcart", "stripe", "--output", "relay.yaml"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if re.match(r"[A-Z_]+=", line)]
    assert lines[0].startswith("SAMCART_TOKEN=") and len(lines[0]) > 30
    assert lines[1] == "STRIPE_SECRET="
    (tmp_path / ".env").write_text(f"{lines[0]}\nSTRIPE_SECRET=whsec_abc\n")
    monkeypatch.setenv("RELAY_CONFIG", "relay.yaml")
    assert main(["check"]) == 0


def test_init_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "relay.yaml"
    existing.write_text("sources: {}\n")
    assert main(["init", "thrivecart", "--output", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert existing.read_text() == "sources: {}\n"


def test_init_unknown_sender_lists_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "thrivecart", "paypal", "--output", "relay.yaml"]) == 2
    err = capsys.readouterr().err
    assert "'paypal'" in err and "thrivecart" in err and "woocommerce" in err
    assert not (tmp_path / "relay.yaml").exists()
