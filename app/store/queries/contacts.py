"""Contact reuse shared by every replica (keys are digests, see app.delivery.reuse)."""

from __future__ import annotations

from app.store.database import Conn
from app.store.dialect import Dialect


def reused_contact(
    conn: Conn, d: Dialect, email_key: str, fields_key: str, since: float
) -> int | None:
    """The contact id of the last upsert for this email, if it was made since ``since``
    with these very fields."""
    row = conn.execute(
        d.sql(
            "SELECT contact_id FROM contact_reuse "
            "WHERE email_key = ? AND fields_key = ? AND made_at >= ?"
        ),
        (email_key, fields_key, since),
    ).fetchone()
    return int(row["contact_id"]) if row is not None else None


def remember_contact(
    conn: Conn,
    d: Dialect,
    email_key: str,
    fields_key: str,
    contact_id: int,
    now: float,
    keep: float,
) -> None:
    """Record the last upsert for this email (replacing any before it); entries older than
    ``keep`` seconds are pruned now and then."""
    conn.execute(
        d.sql(
            "INSERT INTO contact_reuse (email_key, fields_key, contact_id, made_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (email_key) DO UPDATE SET "
            "fields_key = excluded.fields_key, contact_id = excluded.contact_id, "
            "made_at = excluded.made_at"
        ),
        (email_key, fields_key, contact_id, now),
    )
    if int(now * 1000) % 53 == 0:  # prune now and then, not on every upsert
        conn.execute(d.sql("DELETE FROM contact_reuse WHERE made_at < ?"), (now - keep,))


def forget_contact(conn: Conn, d: Dialect, email_key: str, contact_id: int) -> None:
    """Drop the entry for this email if it still names ``contact_id``."""
    conn.execute(
        d.sql("DELETE FROM contact_reuse WHERE email_key = ? AND contact_id = ?"),
        (email_key, contact_id),
    )
