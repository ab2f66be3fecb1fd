"""The grouping decision: which dead events make an alert, without a server."""

from __future__ import annotations

from app.alerts.grouping import dead_key, plan_dead_alerts
from app.alerts.messages import dead_events_alert
from app.domain.problems import DeadEvent, DeadGroup

T0 = 1_700_000_000.0
WINDOW = 300.0
QUIET = 10.0


def dead(source: str, at: float, reason: str = "tags: 400") -> DeadEvent:
    return DeadEvent(source, "paid-order", reason, at)


def test_a_settled_burst_is_one_group_per_source_route_and_reason() -> None:
    burst = [dead("shop", T0 + i) for i in range(50)] + [dead("woo", T0 + 3)]
    burst.append(dead("shop", T0 + 7, reason="goal: 400"))
    plan = plan_dead_alerts(burst, {}, until=T0 + 60, now=T0 + 61, window=WINDOW, quiet=QUIET)
    assert sorted((g.source, g.reason, g.count) for g in plan.send) == [
        ("shop", "goal: 400", 1),
        ("shop", "tags: 400", 50),
        ("woo", "tags: 400", 1),
    ]
    shop = next(g for g in plan.send if g.count == 50)
    assert (shop.first_at, shop.last_at) == (T0, T0 + 49)
    assert plan.cursor == T0 + 60


def test_a_storm_still_going_waits_for_quiet_then_is_told_all_the_same() -> None:
    storm = [dead("shop", T0 + i) for i in range(20)]
    plan = plan_dead_alerts(storm, {}, until=T0 + 20, now=T0 + 21, window=WINDOW, quiet=QUIET)
    assert plan.send == []
    assert plan.cursor == T0
    long_storm = [dead("shop", T0 + i) for i in range(61)]
    plan = plan_dead_alerts(long_storm, {}, until=T0 + 61, now=T0 + 61, window=WINDOW, quiet=QUIET)
    assert [g.count for g in plan.send] == [61]  # 6 quiet periods old: told while it goes on


def test_a_group_told_within_the_window_is_held_and_its_told_events_not_counted_again() -> None:
    key = dead_key("shop", "paid-order", "tags: 400")
    told = {key: (T0 + 4, T0 + 20)}  # events up to T0+4 told at T0+20
    events = [dead("shop", T0 + i) for i in range(8)]
    plan = plan_dead_alerts(events, told, until=T0 + 100, now=T0 + 100, window=WINDOW, quiet=QUIET)
    assert plan.send == []
    assert plan.cursor == T0 + 5  # the first event not yet told
    later = T0 + 20 + WINDOW
    plan = plan_dead_alerts(events, told, until=later, now=later, window=WINDOW, quiet=QUIET)
    assert [(g.count, g.first_at, g.last_at) for g in plan.send] == [(3, T0 + 5, T0 + 7)]


def test_the_message_reads_for_slack_and_discord_and_names_what_to_do() -> None:
    group = DeadGroup("shop", "paid-order", "tags: 400 no such tag", 3, T0, T0 + 9)
    payload = dead_events_alert(group).payload("https://relay.example.com/")
    assert payload["text"] == payload["content"]
    assert payload["text"].splitlines()[0] == (
        "[relay] 3 events went dead (source 'shop', route 'paid-order')"
    )
    assert "What to do: fix the cause" in payload["text"]
    assert payload["dashboard_url"] == "https://relay.example.com/admin/?status=dead&source=shop"
    assert payload["fields"]["count"] == 3


def test_action_sets_failing_after_the_sunset_say_how_to_move_off_xml_rpc() -> None:
    reason = "action_set: Keap retired XML-RPC (2026-12-31, RELAY_KEAP_XMLRPC_SUNSET), ..."
    alert = dead_events_alert(DeadGroup("shop", "paid-order", reason, 1, T0, T0))
    assert alert.kind == "xmlrpc_retired"
    assert "docs/action-sets.md" in alert.action
    assert "--replan" in alert.action
    assert alert.payload(None)["dashboard_url"] is None  # no RELAY_PUBLIC_URL: no link


def test_a_long_reason_is_cut_to_what_discord_accepts() -> None:
    alert = dead_events_alert(DeadGroup("shop", "r", "x" * 5000, 1, T0, T0))
    assert len(alert.payload("https://r.example.com")["content"]) == 2000
