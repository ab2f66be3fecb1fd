"""`relay check` warns about action sets before (and after) the XML-RPC sunset;
`relay replay` refuses option mixes that would re-send real steps, and replays ignored
events only re-planned."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.bootstrap import bootstrap
from app.keap.models import StoredToken
from app.settings import Settings
from tests.admin.conftest import new_event
from tests.admin.test_replay_ignored import WITH_CREATE_ROUTE
from tests.cli.conftest import Cli, database_url, seed, statuses
from tests.conftest import CONFIG_YAML


def test_check_warns_for_every_route_with_an_action_set_and_exits_0(cli: Cli) -> None:
    result = cli("check")
    assert result.code == 0, result.err
    warnings = [line for line in result.out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # only paid-order runs one
    [warning] = warnings
    assert "route paid-order runs action set 42 over XML-RPC" in warning
    assert "2026-12-31" in warning
    assert "RELAY_KEAP_XMLRPC_SUNSET" in warning
    assert "API goal" in warning
    assert "docs/action-sets.md" in warning


def test_check_says_the_action_sets_fail_once_the_sunset_has_passed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_KEAP_XMLRPC_SUNSET", "2020-01-31")
    result = cli("check")
    assert result.code == 0, result.err
    assert "Keap retired XML-RPC on 2020-01-31: these steps now fail at once" in result.out


def test_check_without_action_sets_has_no_sunset_warning(cli: Cli, workdir: Path) -> None:
    (workdir / "relay.yaml").write_text(CONFIG_YAML.replace("      - action_set: 42\n", ""))
    result = cli("check")
    assert result.code == 0, result.err
    assert "warning:" not in result.out
    assert "XML-RPC" not in result.out


def test_replay_refuses_from_start_with_dry_run_steps(cli: Cli) -> None:
    result = cli("replay", "--dry-run-steps", "--from-start")
    assert result.code == 2
    assert "not allowed with argument" in result.err


def test_replay_of_ignored_events_needs_replan_and_queues_what_a_route_now_takes(
    cli: Cli, workdir: Path
) -> None:
    (workdir / "relay.yaml").write_text(WITH_CREATE_ROUTE)  # the route the events lacked
    url = database_url(workdir)
    order = {"customer": {"email": "ann@example.com"}}
    routed, unrouted = (
        new_event(received_at=time.time() - 60, status="ignored", event_type=kind, payload=order)
        for kind in ("orders/create", "orders/cancelled")
    )
    seed(url, [routed, unrouted])

    refused = cli("replay", "--status", "ignored")
    assert refused.code == 2
    assert "relay replay --replan" in refused.err
    result = cli("replay", "--status", "ignored", "--replan")
    assert (result.code, result.out) == (0, "requeued 1 event\n")
    assert statuses(url) == {routed.id: "pending", unrouted.id: "ignored"}


def oauth_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_KEAP_API_KEY", raising=False)
    monkeypatch.delenv("RELAY_KEAP_REFRESH_TOKEN", raising=False)
    monkeypatch.setenv("RELAY_KEAP_CLIENT_ID", "client-id")
    monkeypatch.setenv("RELAY_KEAP_CLIENT_SECRET", "client-secret")


def test_check_warns_when_oauth_has_no_refresh_token_anywhere(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    oauth_without_token(monkeypatch)
    result = cli("check")
    assert result.code == 0, result.err  # a warning: `relay keap login` may come next
    assert "OAuth is configured but no refresh token is stored yet" in result.out
    assert "relay keap login" in result.out
    assert "client-secret" not in result.out + result.err


def test_check_is_quiet_about_oauth_once_relay_keap_login_stored_a_token(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    oauth_without_token(monkeypatch)

    async def store_token() -> None:
        settings = Settings()
        async with bootstrap(settings, pool_size=1) as opened:
            token = StoredToken("refresh-1", None, None, None, time.time())
            assert await opened.store.save_oauth_token(token, previous_refresh_token=None)

    asyncio.run(store_token())
    result = cli("check")
    assert result.code == 0, result.err
    assert "refresh token" not in result.out


def test_check_is_quiet_about_oauth_with_a_refresh_token_in_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    oauth_without_token(monkeypatch)
    monkeypatch.setenv("RELAY_KEAP_REFRESH_TOKEN", "refresh-from-env")
    result = cli("check")
    assert result.code == 0, result.err
    assert "refresh token" not in result.out
