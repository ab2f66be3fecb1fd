"""The browser and served-relay fixtures, shared by every browser test."""

from tests.browser.test_dashboard_browser import browser, served_relay  # noqa: F401 (fixtures)
