"""A private PostgreSQL server on loopback and a random port, for tests.

initdb into a temp folder owned by user postgres (PostgreSQL refuses to run
as root), listen on 127.0.0.1 only, trust auth for loopback.  Stopped by the
PID we recorded.
"""

from __future__ import annotations

import glob
import os
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
    def __init__(self, prefix: str = "chtest", tls: tuple[Path, Path] | None = None):
        self.base = Path(tempfile.mkdtemp(prefix=f"{prefix}-pg-"))
        self.port = free_port()
        # ssl = on with this (certificate, key); clients choose sslmode in the URL.
        self.tls = tls
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.url_of("congress")

    def url_of(self, database: str, driver: str = "") -> str:
        """A URL of ``database``: ``postgresql://`` (psycopg 3) or with ``+driver``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://congress@127.0.0.1:{self.port}/{database}"

    def sql(self, query: str) -> str:
        """``query`` as superuser; its rows, one per line, columns separated by |."""
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-tAc", query], check=True, capture_output=True, text=True,
                           user="postgres", group="postgres", cwd=str(self.base))
        return r.stdout.strip()

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
        ssl_args: list[str] = []
        if self.tls:
            # PostgreSQL wants its key owned by itself and not readable by others.
            for name, src in zip(("server.crt", "server.key"), self.tls, strict=True):
                shutil.copy(src, self.base / name)
                shutil.chown(self.base / name, "postgres", "postgres")
                os.chmod(self.base / name, 0o600)
            ssl_args = ["-c", "ssl=on", "-c", f"ssl_cert_file={self.base / 'server.crt'}",
                        "-c", f"ssl_key_file={self.base / 'server.key'}"]
        self._args = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                      "-c", "listen_addresses=127.0.0.1",
                      "-c", f"unix_socket_directories={self.base}", "-c", "fsync=off",
                      *ssl_args]
        self._launch(timeout)
        psql = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]
        self._run(*psql, "CREATE USER congress")
        self._run(*psql, "CREATE DATABASE congress OWNER congress")

    def _launch(self, timeout: float) -> None:
        bindir = _bindir()
        self.proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL,
            stderr=open(self.base / "postgres.log", "ab"),
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

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are cut), keeping its data."""
        stop_popen(self.proc, signal.SIGINT, 20)
        self.proc = None

    def resume(self, timeout: float = 30.0) -> None:
        """Start the stopped server again on its data."""
        self._launch(timeout)

    def cleanup(self) -> None:
        stop_popen(self.proc, signal.SIGINT, 20)  # fast shutdown
        self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)
