"""The dashboard in a real headless Chromium: sign in, find a dead event, replay it once
the cause is fixed, watch it become delivered.

Drives Debian's ``chromium`` through its ``chromedriver`` with Selenium (nothing is
downloaded). Skips when they are missing, unless RELAY_REQUIRE_BROWSER=1 (CI), where a
missing browser fails. RELAY_DASHBOARD_SCREENSHOT=docs/dashboard.png refreshes the
README's screenshot; otherwise it is written under the test's tmp_path only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fake_keap.server import FakeKeapServer
from tests.support.processes import free_port, keap_env, relay_env, start_relay, stop

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ADMIN_TOKEN = "adm-browser-Vb7q2LxN-5c4d3e2f1a0b9c8d"
API_KEY = "kp-browser-test-key"
WEBHOOK_TOKEN = "cart-token-4d9f"
VIEWPORT = (1280, 800)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
    f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
)
ACTION_SET_FAULT = "[RecordNotFound]Unable to perform update. Record not found for Id:42"
CONFIG = """
sources:
  cart:
    verify: {scheme: token, secret: "${CART_TOKEN}", at: 'headers."x-token"'}
    event_type: body.event
    event_id: body.id
routes:
  - name: paid-order
    source: cart
    event: order.paid
    contact: {email: body.email, given_name: body.first_name}
    actions:
      - action_set: 42
      - tags: [101]
  - name: newsletter
    source: cart
    event: subscriber.added
    contact: {email: body.email, given_name: body.first_name}
    actions:
      - tags: [500]
  - name: cancelled
    source: cart
    event: subscription.cancelled
    contact: {email: body.email}
    actions:
      - remove_tags: [101]
"""


def _missing_browser() -> str | None:
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[test]')"
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return "Debian's chromium is not installed (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    reason = _missing_browser()
    if reason is not None:
        if os.environ.get("RELAY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RELAY_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    # The window includes no toolbar in headless mode, but pin the page size exactly.
    width, height = VIEWPORT
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class ServedRelay:
    base_url: str
    fake: FakeKeapServer
    log: Path

    def post(self, body: dict[str, Any]) -> str:
        response = httpx.post(
            f"{self.base_url}/hooks/cart", json=body, headers={"x-token": WEBHOOK_TOKEN}
        )
        assert response.status_code == 202, response.text
        event_id: str = response.json()["event_id"]
        return event_id

    def wait_for(self, event_id: str, status: str, *, tried: bool = False) -> None:
        """Until the admin API shows the event in ``status`` (and, with ``tried``, after
        at least one delivery attempt)."""
        deadline = time.monotonic() + 20
        while True:
            event = httpx.get(
                f"{self.base_url}/admin/events/{event_id}",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ).json()
            if event["status"] == status and (not tried or event["attempts"] > 0):
                return
            if time.monotonic() > deadline:
                log = self.log.read_text()[-2000:]
                raise AssertionError(f"{event_id} is {event['status']}, not {status}:\n{log}")
            time.sleep(0.1)


@pytest.fixture
def served_relay(tmp_path: Path) -> Iterator[ServedRelay]:
    """``relay serve`` on a fresh SQLite file, delivering to the fake Infusionsoft, whose
    action set 42 answers with an XML-RPC fault until the test clears it."""
    with FakeKeapServer(valid_keys={API_KEY}, per_minute=240, per_day=30_000) as fake:
        fake.state.set_fault("ContactService.runActionSequence", 5, ACTION_SET_FAULT)
        port = free_port()
        env = relay_env(
            tmp_path,
            f"sqlite:///{tmp_path / 'relay.db'}",
            CONFIG,
            {
                "CART_TOKEN": WEBHOOK_TOKEN,
                "RELAY_HOST": "127.0.0.1",
                "RELAY_PORT": str(port),
                "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
                **keap_env(fake, API_KEY),
                "RELAY_KEAP_RATE_PER_SECOND": "50",
                "RELAY_RETRY_BASE_SECONDS": "90",  # a failing event stays visibly pending
            },
        )
        process = start_relay(["serve"], env, tmp_path, port)
        try:
            yield ServedRelay(f"http://127.0.0.1:{port}", fake, tmp_path / "relay.log")
        finally:
            stop(process)


def _events_in_every_state(relay: ServedRelay) -> str:
    """A dead order (the faulted action set), a delivered signup, an ignored refund and a
    cancellation waiting out a Keap outage; the dead order's id."""
    ada = {"first_name": "Ada", "email": "ada.lovelace@example.com"}
    dead = relay.post({"event": "order.paid", "id": "o-1001", **ada})
    relay.wait_for(dead, "dead")
    grace = {"first_name": "Grace", "email": "grace.hopper@example.com"}
    signup = relay.post({"event": "subscriber.added", "id": "s-77", **grace})
    relay.wait_for(signup, "delivered")
    ignored = relay.post({"event": "refund.created", "id": "r-5", "email": "x@example.com"})
    relay.wait_for(ignored, "ignored")
    relay.fake.state.fail_next(503, count=100, operation="tags.remove")
    waiting = relay.post(
        {"event": "subscription.cancelled", "id": "c-9", "email": "alan@turing.io"}
    )
    relay.wait_for(waiting, "pending", tried=True)
    return dead


def _wait_for_page(driver: WebDriver, selector: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def _save_screenshot(driver: WebDriver, tmp_path: Path) -> Path:
    target = Path(os.environ.get("RELAY_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(target))
    return target


def test_an_operator_replays_a_dead_event_from_the_dashboard(
    browser: WebDriver, served_relay: ServedRelay, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    dead_id = _events_in_every_state(served_relay)
    browser.get(f"{served_relay.base_url}/admin/")
    _wait_for_page(browser, "[data-testid=login-token]").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "[data-testid=login-submit]").click()

    row = _wait_for_page(browser, f"tr[data-event-id='{dead_id}']")
    badge = row.find_element(By.CSS_SELECTOR, "[data-testid=status-badge]")
    assert (badge.get_attribute("data-status"), badge.text) == ("dead", "dead")
    assert "RecordNotFound" in row.text
    badges = browser.find_elements(By.CSS_SELECTOR, "tr [data-testid=status-badge]")
    assert [b.text for b in badges] == ["pending", "ignored", "delivered", "dead"]
    assert browser.find_element(By.CSS_SELECTOR, "[data-testid=stat-dead] .value").text == "1"
    auth = browser.find_element(By.CSS_SELECTOR, "[data-testid=keap-auth]")
    assert auth.get_attribute("data-status") == "ok"  # calls went through: the key works
    screenshot = _save_screenshot(browser, tmp_path)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    row.find_element(By.CSS_SELECTOR, "[data-testid=event-link]").click()
    last_error = _wait_for_page(browser, "[data-testid=last-error]")
    assert "action_set" in last_error.text
    assert "RecordNotFound" in last_error.text
    served_relay.fake.state.clear_faults()  # the operator fixed action set 42 in Keap
    browser.find_element(By.CSS_SELECTOR, "[data-testid=replay-unfinished]").click()
    assert "Re-queued" in _wait_for_page(browser, "[data-testid=flash]").text

    deadline = time.monotonic() + 20
    while _status_on_page(browser) != "delivered":
        assert time.monotonic() < deadline, f"still {_status_on_page(browser)} after replay"
        time.sleep(0.3)
        browser.refresh()
    steps = browser.find_elements(By.CSS_SELECTOR, "[data-testid=step-status]")
    assert [step.text for step in steps] == ["done", "done", "done"]
    operations = [
        row.find_elements(By.TAG_NAME, "td")[2].text
        for row in browser.find_elements(By.CSS_SELECTOR, "[data-testid=history-row]")
    ]
    assert operations.count("contact.upsert") == 1  # the replay ran only unfinished steps
    assert len(served_relay.fake.state.action_set_runs) == 1


def _status_on_page(driver: WebDriver) -> str | None:
    from selenium.webdriver.common.by import By

    badge = driver.find_element(By.CSS_SELECTOR, "h1 [data-testid=status-badge]")
    return badge.get_attribute("data-status")
