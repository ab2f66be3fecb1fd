"""`relay init SENDER` on an existing relay.yaml adds the sender's source and routes and
leaves every line the user wrote — comments included — as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.config.loader import parse_config
from tests.recipes.delivery import TEST_ENV

USERS_FILE = """\
# my relay: the shop only, for now
sources:
    shop:   # the Shopify store
        verify: {scheme: shopify, secret: "${SHOPIFY_SECRET}"}

# --- routes ---
routes:
- name: paid
  source: shop
  event: orders/paid
  contact: {email: body.email}
  actions:
  - tags: [5]   # the "Customer" tag
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAY_CONFIG", "relay.yaml")
    return tmp_path


def lines_in_order(needles: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(line == needle for line in remaining) for needle in needles)


def test_init_adds_senders_to_an_existing_file_keeping_every_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "relay.yaml").write_text(USERS_FILE)
    assert main(["init", "woocommerce", "thrivecart"]) == 0
    out = capsys.readouterr().out
    assert "added to relay.yaml" in out
    assert "source woocommerce, routes woocommerce-purchase, woocommerce-refund" in out
    assert "THRIVECART_SECRET=\n" in out
    assert "WOOCOMMERCE_SECRET=" in out
    assert "SHOPIFY_SECRET" not in out  # only the new senders' secrets

    merged = (workdir / "relay.yaml").read_text()
    assert lines_in_order(USERS_FILE.splitlines(), merged.splitlines())
    assert "# In ThriveCart: Settings > API & Webhooks" in merged  # the recipe's notes too
    config = parse_config(merged, {**TEST_ENV, "SHOPIFY_SECRET": "shpss_0123456789"})
    assert list(config.sources) == ["shop", "woocommerce", "thrivecart"]
    assert [r.name for r in config.routes][:2] == ["paid", "woocommerce-purchase"]
    assert config.routes[-1].name == "thrivecart-cancellation"
    assert config.routes[0].actions[0].value == [5]


def test_init_matches_a_two_space_file_written_by_init(workdir: Path) -> None:
    assert main(["init", "shopify"]) == 0
    first = (workdir / "relay.yaml").read_text()
    assert main(["init", "stripe"]) == 0
    merged = (workdir / "relay.yaml").read_text()
    assert merged.startswith(first.split("\nroutes:\n")[0])
    config = parse_config(merged, TEST_ENV)
    assert list(config.sources) == ["shopify", "stripe"]
    assert [r.name for r in config.routes][:5] == [
        "shopify-purchase",
        "shopify-refund",
        "shopify-cancellation",
        "shopify-signup",
        "stripe-purchase",
    ]


def test_init_leaves_out_a_sender_already_there(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "relay.yaml").write_text(USERS_FILE.replace("shop:", "woocommerce:"))
    before = (workdir / "relay.yaml").read_text()
    assert main(["init", "woocommerce"]) == 0
    err = capsys.readouterr().err
    assert "left out woocommerce: relay.yaml already has a source named so" in err
    assert "nothing added to relay.yaml" in err
    assert (workdir / "relay.yaml").read_text() == before


def test_init_refuses_an_inline_section_and_changes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "sources: {office: {verify: {scheme: none}, allow_ips: [10.0.0.0/8]}}\n"
    (workdir / "relay.yaml").write_text(text)
    assert main(["init", "shopify"]) == 2
    assert "'sources:' is written inline" in capsys.readouterr().err
    assert (workdir / "relay.yaml").read_text() == text


def test_init_fills_empty_inline_sections(workdir: Path) -> None:
    (workdir / "relay.yaml").write_text("sources: {}\nroutes: []   # none yet\n")
    assert main(["init", "shopify"]) == 0
    merged = (workdir / "relay.yaml").read_text()
    assert "routes:   # none yet\n" in merged
    config = parse_config(merged, TEST_ENV)
    assert list(config.sources) == ["shopify"]
    assert len(config.routes) == 4
