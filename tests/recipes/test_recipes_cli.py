"""The shipped recipes are well-formed, `relay recipes` lists them, and `relay init`
writes a relay.yaml that `relay check` accepts once the secrets are set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import main
from app.config.loader import parse_config
from app.config.placeholders import PLACEHOLDER_IDS
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
    assert "THRIVECART_SECRET=\n" in printed
    assert "SHOPIFY_SECRET=\n" in printed
    assert "relay check" in printed

    assert main(["check"]) == 2  # the secrets are not set yet
    assert "THRIVECART_SECRET is not set" in capsys.readouterr().err

    monkeypatch.setenv("THRIVECART_SECRET", "secret-word")
    monkeypatch.setenv("SHOPIFY_SECRET", "shpss_0123456789")
    assert main(["check"]) == 2  # the recipes' placeholder ids are still in place
    captured = capsys.readouterr()
    assert "thrivecart: POST /hooks/thrivecart" in captured.out
    assert "still holds 9 placeholder ids from the recipes" in captured.err
    text = (tmp_path / "relay.yaml").read_text()
    assert text.count("TODO-ID") >= 7
    assert "Settings > API & Webhooks" in text

    ids = iter(range(501, 600))
    (tmp_path / "relay.yaml").write_text(
        re.sub(r"\b([1-4])\1{5}\b", lambda _: str(next(ids)), text)
    )
    assert main(["check"]) == 0
    plan = capsys.readouterr().out
    assert "shopify-purchase:" in plan
    assert "apply tags 505" in plan


@pytest.fixture
def shopify_yaml(
    tmp_path: Path, recipe_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``relay init shopify`` run in ``tmp_path`` with the recipes' secrets set and
    RELAY_CONFIG=relay.yaml: the relay.yaml it wrote."""
    monkeypatch.setenv("RELAY_CONFIG", "relay.yaml")
    assert main(["init", "shopify"]) == 0
    return tmp_path / "relay.yaml"


def test_check_names_each_placeholder_its_route_and_where_to_find_the_id(
    shopify_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = shopify_yaml.read_text().splitlines()
    refunded = next(n for n, line in enumerate(lines, 1) if "[222222]" in line)
    lines[refunded - 1] = lines[refunded - 1].replace("222222", "87")  # one id done
    shopify_yaml.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["check"]) == 2
    problems = capsys.readouterr().err.splitlines()
    assert problems[0].startswith("relay.yaml still holds 4 placeholder ids")
    first_tag = next(n for n, line in enumerate(lines, 1) if "tags: [111111]" in line)
    assert problems[1] == (
        f"  relay.yaml:{first_tag}: route shopify-purchase, step 2 (tags): 111111 is a "
        'placeholder (your "Shopify customer" tag id). Find the real id: CRM > Settings > '
        "Tags in Infusionsoft: the ID column of the tag list"
    )
    assert [p.split(": route ")[1].split(":")[0] for p in problems[2:]] == [
        "shopify-refund, step 2 (remove_tags)",
        "shopify-cancellation, step 2 (tags)",
        "shopify-signup, step 2 (tags)",
    ]


def test_every_recipe_placeholder_is_one_check_knows() -> None:
    for recipe in load_all():
        for line in recipe.text.splitlines():
            if "TODO-ID" in line and line.split("#", 1)[0].strip():  # not commented out
                ids = re.findall(r"\d+", line.split("#", 1)[0])
                assert ids, line
                assert all(int(i) in PLACEHOLDER_IDS for i in ids), line


def test_init_secrets_from_dotenv_pass_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed .env lines, filled in, are all `relay check` needs; tokens the user
    chooses come generated."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "samcart", "stripe", "--output", "relay.yaml"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if re.match(r"[A-Z_]+=", line)]
    assert lines[0].startswith("SAMCART_TOKEN=")
    assert len(lines[0]) > 30
    assert lines[1] == "STRIPE_SECRET="
    (tmp_path / ".env").write_text(f"{lines[0]}\nSTRIPE_SECRET=whsec_abc\n")
    monkeypatch.setenv("RELAY_CONFIG", "relay.yaml")
    assert main(["check"]) == 2
    assert "placeholder" in capsys.readouterr().err  # the secrets are fine: only the ids
    text = (tmp_path / "relay.yaml").read_text()
    (tmp_path / "relay.yaml").write_text(re.sub(r"\b([1-4])\1{5}\b", "77", text))
    assert main(["check"]) == 0


def test_init_unknown_sender_lists_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "thrivecart", "paypal", "--output", "relay.yaml"]) == 2
    err = capsys.readouterr().err
    assert "'paypal'" in err
    assert "thrivecart" in err
    assert "woocommerce" in err
    assert not (tmp_path / "relay.yaml").exists()


def test_check_names_the_placeholders_of_an_uncommented_order_block(
    shopify_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = shopify_yaml.read_text()
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.strip() == "# - order:")
    end = next(n for n in range(start, len(lines)) if "payment:" in lines[n])
    for n in range(start, end + 1):  # uncomment the order block, as docs/orders.md says
        lines[n] = lines[n].replace("# ", "", 1)
    text = "\n".join(lines) + "\n"
    ids = iter(range(501, 600))  # every id but the order block's is filled in
    text = re.sub(r"\b([1-4])\1{5}\b", lambda _: str(next(ids)), text)
    shopify_yaml.write_text(text)
    capsys.readouterr()

    assert main(["check"]) == 2
    problems = capsys.readouterr().err.splitlines()
    assert problems[0].startswith("relay.yaml still holds 3 placeholder ids")
    assert all("route shopify-purchase, step 3 (order)" in p for p in problems[1:])
    assert [p.split(": ")[2].split(" ")[0] for p in problems[1:]] == [
        "555555",
        "999999",
        "888888",
    ]
    assert "E-Commerce > Products" in problems[1]
