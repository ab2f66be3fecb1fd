"""A missing, empty or too-short secret is named by its environment variable — and its
value is never shown."""

from __future__ import annotations

import pytest

from app.config.loader import parse_config
from app.errors import ConfigError

CONFIG = """
sources:
  shop:
    verify: {scheme: shopify, secret: "${SHOP_SECRET}"}
  members:
    verify: {scheme: standard, secret: "${MEMBERS_SECRET}"}
    event_type: body.type
routes: []
"""
GOOD = {"SHOP_SECRET": "shpss_0123456789", "MEMBERS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8I"}


def problems(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG, {**GOOD, **env}, name="relay.yaml")
    return caught.value.problems


def test_good_secrets_load() -> None:
    assert list(parse_config(CONFIG, GOOD).sources) == ["shop", "members"]


def test_an_empty_secret_is_named_by_its_variable() -> None:
    assert problems(SHOP_SECRET="") == [
        "relay.yaml: sources.shop.verify: scheme 'shopify' needs a secret (SHOP_SECRET is empty)"
    ]


def test_a_short_secret_is_named_by_its_variable_and_not_shown() -> None:
    [problem] = problems(SHOP_SECRET="a1b2c")
    assert problem == (
        "relay.yaml: sources.shop.verify.secret: SHOP_SECRET is 5 characters long: too short "
        "for a secret (at least 8; is the whole value there?)"
    )
    assert "a1b2c" not in problem


def test_a_malformed_secret_names_the_variable_it_came_from() -> None:
    [problem] = problems(MEMBERS_SECRET="not-a-standard-secret")
    assert problem == (
        "relay.yaml: sources.members.verify: scheme 'standard' needs a secret starting with "
        "whsec_ (from ${MEMBERS_SECRET})"
    )
    assert "not-a-standard-secret" not in problem


def test_a_secret_written_in_the_file_is_not_held_to_the_length() -> None:
    text = CONFIG.replace('"${SHOP_SECRET}"', "short")  # the user's explicit choice
    assert parse_config(text, GOOD).sources["shop"].verify.secret == "short"
