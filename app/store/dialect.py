"""What differs between the SQL of SQLite and of PostgreSQL, in one object.

The queries are written once with ``?`` placeholders; a dialect turns them into its own
and supplies the clauses only one database has (row locks, advisory locks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# pg_advisory_xact_lock keys (one-key form). The insert path's per-contact locks use the
# two-key form with keys of their own (app.store.postgres_db).
MIGRATION_LOCK_KEY = 727273
LIMITER_LOCK_KEY = 727274


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str  # "sqlite" or "postgres": the key of each migration's statements
    placeholder: str  # "?" or "%s"
    # Appended to the due-events SELECT of a claim: replicas claiming at the same time
    # skip each other's rows instead of waiting for them.
    skip_locked: str
    # Appended to a SELECT of a row the transaction then writes: held until commit.
    for_update: str
    # Run first by every limiter reservation: one limiter for all replicas (SQLite's
    # single writer already runs them one at a time).
    limiter_lock: str | None
    # Taken by each migration's transaction, so replicas starting together migrate once.
    migration_lock: str | None

    def sql(self, text: str) -> str:
        """``text``, written with ``?`` placeholders, in this dialect."""
        return sql(text, self.placeholder)


@lru_cache(maxsize=256)
def sql(text: str, placeholder: str) -> str:
    return text if placeholder == "?" else text.replace("?", placeholder)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    skip_locked="",
    for_update="",
    limiter_lock=None,
    migration_lock=None,  # BEGIN IMMEDIATE takes the database's one write lock
)
POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    skip_locked=" FOR UPDATE OF e SKIP LOCKED",
    for_update=" FOR UPDATE",
    limiter_lock=f"SELECT pg_advisory_xact_lock({LIMITER_LOCK_KEY})",
    migration_lock=f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})",
)
