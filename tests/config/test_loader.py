"""Bad relay.yaml files each give a message naming the file, the path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config.loader import load_config, parse_config
from app.errors import ConfigError
from tests.conftest import CONFIG_YAML, SECRETS

VALID_SOURCE = 'verify: {scheme: shopify, secret: "s"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources: {a: {verify: {scheme: shopify}}}",
            "sources.a.verify: scheme 'shopify' needs a secret",
        ),
        (
            "sources: {a: {verify: {scheme: hmac, secret: s}, event_type: body.e}}",
            "sources.a.verify: scheme 'hmac' needs header",
        ),
        (
            "sources: {a: {verify: {scheme: none}, event_type: body.e}}",
            "sources.a: scheme 'none' is only allowed together with allow_ips",
        ),
        (
            "sources: {a: {verify: {scheme: token, secret: s, at: query.t}}}",
            "sources.a: scheme 'token' has no default event_type: set one",
        ),
        (
            f"sources: {{a: {{{VALID_SOURCE}, allow_ips: [10.0.0.0/33]}}}}",
            "sources.a.allow_ips[0]: '10.0.0.0/33' is not an IP address or CIDR",
        ),
        (
            f"sources: {{a: {{{VALID_SOURCE}, event_type: 'body.[x'}}}}",
            "sources.a.event_type: invalid JMESPath 'body.[x'",
        ),
        (
            'sources: {a: {verify: {scheme: shopify, secret: "${MISSING_SECRET}"}}}',
            "sources.a.verify.secret: environment variable MISSING_SECRET is not set",
        ),
        (
            f"sources: {{a: {{{VALID_SOURCE}}}}}\nroutes: [{{name: r, source: b, event: x, "
            "contact: {email: body.e}}]",
            "routes[0] (r): unknown source 'b' (sources: a)",
        ),
        (
            f"sources: {{a: {{{VALID_SOURCE}}}}}\nroutes: [{{name: r, source: a, event: x, "
            "contact: {given_name: body.n}}]",
            "routes[0].contact.email: required key is missing",
        ),
        (
            f"sources: {{a: {{{VALID_SOURCE}}}}}\nroutes: [{{name: r, source: a, event: x, "
            "contact: {email: body.e}, "
            "actions: [{tags: [1], goal: {integration: a, call_name: b}}]}]",
            "routes[0].actions[0]: an action has exactly one of",
        ),
        (
            f"sources: {{a: {{{VALID_SOURCE}}}}}\nroutes: [{{name: r, source: a, event: x, "
            "contact: {email: body.e}, actions: [{tag: [1]}]}]",
            "routes[0].actions[0].tag: unknown key",
        ),
        (f"sources: {{a: {{{VALID_SOURCE}, verfy: 1}}}}", "sources.a.verfy: unknown key"),
        ("sources: [", "relay.yaml: line 1, column 11"),
        ("- just\n- a list", "the top level must be a mapping"),
        (
            "sources: {a: {verify: {scheme: standard, secret: nope}}}",
            "needs a secret starting with whsec_",
        ),
    ],
)
def test_bad_config_names_path_and_reason(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {}, name="relay.yaml")
    message = "\n".join(caught.value.problems)
    assert expected in message
    assert all(line.startswith("relay.yaml: ") for line in caught.value.problems)


def test_secret_values_never_appear_in_errors() -> None:
    text = 'sources: {a: {verify: {scheme: hmac, secret: "${S}"}, event_type: body.e}}'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {"S": "super-secret-value"})
    assert "super-secret-value" not in str(caught.value)


def test_the_spec_example_loads(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "relay.example.yaml"
    env = {
        "SHOP_SECRET": "shpss_0123456789",
        "MEMBERS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "CART_SECRET": "cart-secret",
        "THRIVECART_SECRET": "thrive-word",
        "MM_TOKEN": "mm-token-123",
    }
    config = load_config(example, env)
    assert list(config.sources) == ["shop", "members", "legacy-cart", "thrivecart", "membermouse"]
    assert [r.name for r in config.routes] == ["paid-order", "new-member", "cancelled"]


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml", {})
    assert "missing.yaml: cannot read" in caught.value.problems[0]


def test_interpolation_and_defaults() -> None:
    config = parse_config(CONFIG_YAML, SECRETS)
    shop = config.sources["shop"]
    assert shop.verify.secret == SECRETS["SHOP_SECRET"]
    assert shop.event_type_selector.expression == 'headers."x-shopify-topic"'
    assert config.sources["membermouse"].methods == ["GET", "POST"]
