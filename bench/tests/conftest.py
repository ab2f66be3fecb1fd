"""The benchmark's own tests (``pytest`` collects them: pyproject's testpaths): the same
no-skips gate and PostgreSQL fixtures as tests/, from devkit."""

from __future__ import annotations

from devkit.fixtures import postgres_schema_url, postgres_server_url  # noqa: F401  fixtures
from devkit.no_skips import (  # noqa: F401  hooks: under RELAY_FORBID_SKIPS=1 a skip fails
    pytest_make_collect_report,
    pytest_runtest_makereport,
)
