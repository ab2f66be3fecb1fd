"""Open problems in a real headless Chromium: two dead groups above the events, one
replayed with its "replay these" button once its cause is fixed; the other stays."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tests.browser.test_dashboard_browser import ADMIN_TOKEN, ServedRelay, _wait_for_page

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def _problems(driver: WebDriver) -> list[tuple[str, str, str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "[data-testid=problem-row]")
    return [
        (
            row.find_element(By.CSS_SELECTOR, "[data-testid=problem-count]").text,
            row.get_attribute("data-source") or "",
            row.find_elements(By.TAG_NAME, "td")[2].text,
        )
        for row in rows
    ]


def test_an_operator_replays_one_group_of_dead_events(
    browser: WebDriver, served_relay: ServedRelay
) -> None:
    from selenium.webdriver.common.by import By

    orders = [
        served_relay.post({"event": "order.paid", "id": f"o-{n}", "email": f"buyer{n}@example.com"})
        for n in range(3)
    ]
    for event_id in orders:
        served_relay.wait_for(event_id, "dead")
    served_relay.fake.state.fail_next(400, operation="tags.add")
    signup = served_relay.post(
        {"event": "subscriber.added", "id": "s-1", "email": "reader@example.com"}
    )
    served_relay.wait_for(signup, "dead")

    browser.get(f"{served_relay.base_url}/admin/")
    _wait_for_page(browser, "[data-testid=login-token]").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "[data-testid=login-submit]").click()
    _wait_for_page(browser, "[data-testid=problems]")
    assert _problems(browser) == [("3", "cart", "paid-order"), ("1", "cart", "newsletter")]
    problems = browser.find_element(By.CSS_SELECTOR, "[data-testid=problems]")
    events = browser.find_element(By.CSS_SELECTOR, "[data-testid=events]")
    assert problems.location["y"] < events.location["y"]  # above the event list
    first = browser.find_elements(By.CSS_SELECTOR, "[data-testid=problem-row]")[0]
    assert "RecordNotFound" in first.text

    served_relay.fake.state.clear_faults()  # the operator fixed action set 42 in Keap
    first.find_element(By.CSS_SELECTOR, "[data-testid=replay-problem]").click()
    assert "3" in _wait_for_page(browser, "[data-testid=flash]").text
    for event_id in orders:
        served_relay.wait_for(event_id, "delivered")
    served_relay.wait_for(signup, "dead")  # another problem: not replayed

    deadline = time.monotonic() + 10
    browser.get(f"{served_relay.base_url}/admin/")
    while _problems(browser) != [("1", "cart", "newsletter")]:
        assert time.monotonic() < deadline, _problems(browser)
        time.sleep(0.3)
        browser.refresh()
    assert len(served_relay.fake.state.action_set_runs) == 3
