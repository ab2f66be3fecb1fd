"""A throwaway PostgreSQL cluster of the soak's own: ``initdb`` into a temporary folder,
its own port, started, restarted and stopped with ``pg_ctl`` — so restarting "the
database" never touches a server anyone else uses.

initdb refuses to run as root: as root, every command runs as the ``postgres`` user
(``runuser``), who is given the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian's layout), or None."""
    found = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda p: _version(p.parent.name))
    return next((folder for folder in reversed(found) if (folder / "initdb").exists()), None)


def unavailable_reason() -> str | None:
    """None when a throwaway cluster can be made here; otherwise why not."""
    if postgres_bin() is None:
        return f"no PostgreSQL server binaries under {BIN_GLOB}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root, and there is no {SERVICE_USER!r} user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root without runuser(1) to run initdb as another user"
    return None


class ThrowawayPostgres:
    """``with ThrowawayPostgres(port) as pg:`` — ``pg.url`` answers until the block ends."""

    def __init__(self, port: int) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.port = port
        self.bin = postgres_bin() or Path()
        self.folder = Path(tempfile.mkdtemp(prefix="relay-soak-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> ThrowawayPostgres:
        try:
            self._init()
            self.start()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop("immediate")
        finally:
            self._remove()

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``mode`` "immediate" is a crash: no checkpoint, recovery from the WAL on start."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Crash the server (immediate stop), then start it again."""
        self.stop("immediate")
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1

    def settings(self) -> dict[str, str]:
        """The durability settings the relay's commits rely on."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('fsync', 'synchronous_commit', 'full_page_writes', 'server_version')"
            ).fetchall()
        return {str(name): str(value) for name, value in rows}

    def _init(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-instructions",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\n# relay soak\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\nmax_connections = 100\n"
                "fsync = on\nsynchronous_commit = on\n"
            )

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=self.folder)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args[:3])}… failed: {done.stderr}{tail}")

    def _remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())
