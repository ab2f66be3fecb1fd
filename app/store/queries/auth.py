"""The OAuth token every replica shares, and the dashboard's sessions."""

from __future__ import annotations

from app.keap.models import StoredToken
from app.store.database import Conn
from app.store.dialect import Dialect


def load_oauth_token(conn: Conn, d: Dialect) -> StoredToken | None:
    row = conn.execute(
        "SELECT refresh_token, access_token, access_expires_at, seed_hash, updated_at "
        "FROM oauth_tokens WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    return StoredToken(
        row["refresh_token"],
        row["access_token"],
        row["access_expires_at"],
        row["seed_hash"],
        row["updated_at"],
    )


def save_oauth_token(
    conn: Conn, d: Dialect, token: StoredToken, previous: str | None, now: float
) -> bool:
    """Compare-and-swap: write only if the stored refresh token is still ``previous``."""
    values = (
        token.refresh_token,
        token.access_token,
        token.access_expires_at,
        token.seed_hash,
        token.stored_at if token.stored_at is not None else now,  # the token's own clock
    )
    if previous is None:
        cursor = conn.execute(
            d.sql(
                "INSERT INTO oauth_tokens (id, refresh_token, access_token, access_expires_at, "
                "seed_hash, updated_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
            ),
            values,
        )
    else:
        cursor = conn.execute(
            d.sql(
                "UPDATE oauth_tokens SET refresh_token = ?, access_token = ?, "
                "access_expires_at = ?, seed_hash = ?, updated_at = ? "
                "WHERE id = 1 AND refresh_token = ?"
            ),
            (*values, previous),
        )
    return bool(cursor.rowcount == 1)


def create_admin_session(
    conn: Conn, d: Dialect, id_hash: str, now: float, expires_at: float
) -> None:
    conn.execute(d.sql("DELETE FROM admin_sessions WHERE expires_at < ?"), (now,))
    conn.execute(
        d.sql("INSERT INTO admin_sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)"),
        (id_hash, now, expires_at),
    )


def admin_session_active(conn: Conn, d: Dialect, id_hash: str, now: float) -> bool:
    row = conn.execute(
        d.sql("SELECT 1 FROM admin_sessions WHERE id_hash = ? AND expires_at > ?"),
        (id_hash, now),
    ).fetchone()
    return row is not None


def revoke_admin_session(conn: Conn, d: Dialect, id_hash: str) -> None:
    conn.execute(d.sql("DELETE FROM admin_sessions WHERE id_hash = ?"), (id_hash,))


def sign_in_failures(conn: Conn, d: Dialect, address: str, since: float, limit: int) -> list[float]:
    """When ``address`` failed to sign in after ``since``: the oldest ``limit`` times."""
    rows = conn.execute(
        d.sql(
            "SELECT at FROM admin_sign_in_failures WHERE address = ? AND at > ? ORDER BY at LIMIT ?"
        ),
        (address, since, limit),
    ).fetchall()
    return [float(row["at"]) for row in rows]


def record_sign_in_failure(
    conn: Conn, d: Dialect, address: str, now: float, forget_before: float
) -> None:
    """Count a failure; every failure at or before ``forget_before`` (of any address) goes,
    so the table holds one window of failures at most."""
    conn.execute(d.sql("DELETE FROM admin_sign_in_failures WHERE at <= ?"), (forget_before,))
    conn.execute(
        d.sql("INSERT INTO admin_sign_in_failures (address, at) VALUES (?, ?)"), (address, now)
    )


def clear_sign_in_failures(conn: Conn, d: Dialect, address: str) -> None:
    conn.execute(d.sql("DELETE FROM admin_sign_in_failures WHERE address = ?"), (address,))
