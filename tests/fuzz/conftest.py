"""Fuzz tests run a bounded number of examples, each module on SQLite and then on
PostgreSQL. Under CI (CI=true) hypothesis runs with the "ci" profile registered in
tests/conftest.py: derandomized, so a red build reproduces exactly and a green one is not
a matter of luck."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devkit.postgres import fresh_postgres_schema


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database for a module's examples: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'relay.db'}"
    else:
        server: str = request.getfixturevalue("postgres_server_url")
        with fresh_postgres_schema(server, prefix="fuzz_") as url:
            yield url
