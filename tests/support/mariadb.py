"""A private MariaDB server on loopback and a random port, for tests.

mariadb-install-db into a temp folder owned by user mysql, mariadbd with no
option files (``--no-defaults``), listening on 127.0.0.1 only; a database and a
user with a password, reached through PyMySQL. Stopped by the PID we recorded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.broker import free_port
from tests.support.procs import stop_popen

PASSWORD = "s3cret-maria"


class MariaDB:
    def __init__(self, prefix: str = "chtest", tls: tuple[Path, Path] | None = None):
        for prog in ("mariadbd", "mariadb-install-db", "mariadb"):
            if shutil.which(prog) is None and not Path(f"/usr/sbin/{prog}").exists():
                raise RuntimeError(f"MariaDB is not installed ({prog}): run `make setup`")
        self.base = Path(tempfile.mkdtemp(prefix=f"{prefix}-maria-"))
        self.port = free_port()
        # TLS with this (certificate, key), and user congress may only connect with it.
        self.tls = tls
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://congress:{PASSWORD}@127.0.0.1:{self.port}/congress"

    def create_database(self, name: str) -> str:
        """A new empty database that user congress owns; returns its URL."""
        self.sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        self.sql(f"GRANT ALL ON {name}.* TO 'congress'@'127.0.0.1'")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    @property
    def socket(self) -> str:
        return str(self.base / "mysqld.sock")

    def sql(self, statement: str) -> str:
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot",
                            "-N", "-e", statement], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"mariadb -e {statement!r}: {r.stderr.strip()}")
        return r.stdout

    def start(self, timeout: float = 60.0) -> None:
        shutil.chown(self.base, "mysql", "mysql")
        data = self.base / "data"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                        "--user=mysql", "--auth-root-authentication-method=normal",
                        "--skip-test-db", "--skip-name-resolve"],
                       check=True, capture_output=True, timeout=120)
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        ssl_args: list[str] = []
        if self.tls:
            for name, src in zip(("server.crt", "server.key"), self.tls, strict=True):
                shutil.copy(src, self.base / name)
                shutil.chown(self.base / name, "mysql", "mysql")
                os.chmod(self.base / name, 0o600)
            ssl_args = [f"--ssl-cert={self.base / 'server.crt'}",
                        f"--ssl-key={self.base / 'server.key'}"]
        self.proc = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={data}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.socket}",
             f"--pid-file={self.base}/mysqld.pid", "--user=mysql", "--skip-name-resolve",
             "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin",
             f"--log-error={self.base}/error.log", *ssl_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sql("SELECT 1")
                break
            except RuntimeError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start: see {self.base}/error.log"
                                       ) from None
                time.sleep(0.1)
        self.sql(f"CREATE USER 'congress'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'"
                 + (" REQUIRE SSL" if self.tls else ""))
        self.create_database("congress")

    def cleanup(self) -> None:
        stop_popen(self.proc, signal.SIGTERM, 30)  # clean shutdown
        self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)
