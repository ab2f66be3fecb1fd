"""Under RELAY_FORBID_SKIPS=1 (set by `.ci/run`), a skipped test or module is a failure.

A skip in CI means a part was not tested (no PostgreSQL, no browser, no tmpfs for the
disk-fault tests, schemathesis missing): the run must say so, not pass. Expected
failures (xfail) are left alone. The hooks are imported into tests/conftest.py and
bench/tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

ENV = "RELAY_FORBID_SKIPS"


def _forbidden() -> bool:
    return os.environ.get(ENV) == "1"


def _reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if _forbidden() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and {ENV}=1 forbids skips: {_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if _forbidden() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped, and {ENV}=1 forbids skips: {_reason(report.longrepr)}"
