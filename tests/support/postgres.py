"""A private PostgreSQL server on loopback and a random port, for tests.

initdb into a temp folder owned by user postgres (PostgreSQL refuses to run
as root), listen on 127.0.0.1 only, trust auth for loopback.  Stopped by the
PID we recorded.
"""

from __future__ import annotations

import glob
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.broker import free_port
from tests.support.procs import stop_popen


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make setup`")
    return Path(found[-1]).parent


class Postgres:
    def __init__(self, prefix: str = "chtest"):
        self.base = Path(tempfile.mkdtemp(prefix=f"{prefix}-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.url_of("congress")

    def url_of(self, database: str, driver: str = "") -> str:
        """A URL of ``database``: ``postgresql://`` (psycopg 3) or with ``+driver``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://congress@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database owned by user congress; returns its URL."""
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c",
                  f"CREATE DATABASE {name} OWNER congress")
        return self.url_of(name)

    def _run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, user="postgres",
                       group="postgres", cwd=str(self.base))

    def start(self, timeout: float = 30.0) -> None:
        shutil.chown(self.base, "postgres", "postgres")
        data = self.base / "data"
        bindir = _bindir()
        self._run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        self.proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.base}",
             "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=open(self.base / "postgres.log", "ab"),
            user="postgres", group="postgres", start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)
            if ready.returncode == 0:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: see {self.base}/postgres.log")
            time.sleep(0.1)
        psql = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]
        self._run(*psql, "CREATE USER congress")
        self._run(*psql, "CREATE DATABASE congress OWNER congress")

    def cleanup(self) -> None:
        stop_popen(self.proc, signal.SIGINT, 20)  # fast shutdown
        self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)
