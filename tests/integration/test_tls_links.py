"""TLS on the bus and the database, with real RabbitMQ and PostgreSQL and a CA the
test makes: the links are encrypted (the servers say so), and a wrong CA is
refused at start with one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from congress_ha.cluster.model import Tls, database_url
from congress_ha.lab import tls as ca_tools
from tests.support.broker import running_broker
from tests.support.mariadb import MariaDB
from tests.support.postgres import Postgres
from tests.support.procs import VENV_BIN, Cluster, wait_for

CI = os.environ.get("CI") == "true"


def _need(tool: str) -> None:
    if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
        if CI:
            pytest.fail(f"{tool} is not installed; CI=true: nothing is skipped")
        pytest.skip(f"{tool} is not installed (make setup)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    _need("openssl")
    base = tmp_path_factory.mktemp("pki")
    ca = ca_tools.make_ca(base / "ca", "integration CA")
    server = ca_tools.issue(ca, base / "ca", "server", ["localhost"], ["127.0.0.1"])
    other = ca_tools.make_ca(base / "other", "a CA nobody uses")
    return {"ca": ca.cert, "server": server, "other": other.cert}


@pytest.fixture(scope="module")
def tls_broker(pki):
    _need("rabbitmq-server")
    with running_broker("chtls", tls=(pki["server"].cert, pki["server"].key, pki["ca"])) as b:
        yield b


@pytest.fixture(scope="module")
def tls_postgres(pki):
    pg = Postgres("chtls", tls=(pki["server"].cert, pki["server"].key))
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()


def bus_tls(ca: Path) -> str:
    return f"[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = {ca}\n"


def db_url(pg: Postgres, ca: Path) -> str:
    return f"{pg.url}?sslmode=verify-full&sslrootcert={ca}"


def test_bus_and_database_links_are_encrypted(tls_broker, tls_postgres, pki, tmp_path):
    c = Cluster(tmp_path, tls_broker.tls_url, db_url(tls_postgres, pki["ca"]),
                extra=bus_tls(pki["ca"]))
    c.seed_datasources(rate=20, window=50)
    pe = c.add_pe("pe1").start()
    dsd = c.add_dsd("dsd").start()
    try:
        wait_for(lambda: pe.healthy("api-pe", 20) and dsd.healthy("datasources", 20), 90,
                 "PE and DSD ready over TLS")
        wait_for(lambda: c.actions(), 30, "actions executed")
        # RabbitMQ's view: every client connection is on the TLS listener, with TLS.
        r = tls_broker.ctl("list_connections", "--quiet", "--no-table-headers", "ssl",
                           "port", "ssl_protocol")
        assert r.returncode == 0, r.stderr
        rows = [line.split("\t") for line in r.stdout.splitlines() if line.strip()]
        assert len(rows) >= 2, rows  # at least one per server process
        assert all(row[0] == "true" and row[1] == str(tls_broker.tls_port) for row in rows), rows
        assert {row[2] for row in rows} <= {"tlsv1.2", "tlsv1.3", "'tlsv1.2'", "'tlsv1.3'"}
        # PostgreSQL's view: every session of the service's user uses SSL.
        out = tls_postgres.sql("SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN "
                               "pg_stat_activity a USING (pid) WHERE a.usename = 'congress'")
        sessions = [line.split("|") for line in out.splitlines()]
        assert sessions, "no session of user congress"
        assert all(ssl == "t" and version.startswith("TLSv1.") for ssl, version in sessions)
    finally:
        c.stop_all()


def start_once(c: Cluster, name: str, roles: list[str]) -> subprocess.CompletedProcess:
    proc = c.add(name, roles)
    return subprocess.run([str(VENV_BIN / "congress-ha-server"), "--config-file",
                           str(proc.conf), *roles], capture_output=True, text=True,
                          timeout=90, check=False)


def test_a_broker_certificate_from_another_ca_is_refused_at_start(tls_broker, pki, tmp_path):
    c = Cluster(tmp_path, tls_broker.tls_url, extra=bus_tls(pki["other"]))
    r = start_once(c, "dsd", ["--datasources"])
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert "[oslo_messaging_rabbit] ssl_ca_file" in r.stderr
    assert "is not trusted" in r.stderr and "certificate verify failed" not in r.stdout


def test_ssl_on_the_plain_port_is_named(tls_broker, pki, tmp_path):
    c = Cluster(tmp_path, tls_broker.url, extra=bus_tls(pki["ca"]))
    r = start_once(c, "dsd", ["--datasources"])
    assert r.returncode == 2, r.stderr
    assert "does not complete a TLS handshake" in r.stderr and "5671" in r.stderr, r.stderr


def test_a_database_certificate_from_another_ca_is_refused_at_start(tls_broker, tls_postgres,
                                                                    pki, tmp_path):
    url = db_url(tls_postgres, pki["other"]).replace("congress@", "congress:s3cret@")
    c = Cluster(tmp_path, tls_broker.tls_url, url, extra=bus_tls(pki["ca"]))
    r = start_once(c, "dsd", ["--datasources"])
    assert r.returncode == 1, r.stderr
    assert "certificate verify failed" in r.stderr, r.stderr
    assert "s3cret" not in r.stderr  # the URL is shown masked
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def tls_mariadb(pki):
    db = MariaDB("chtls", tls=(pki["server"].cert, pki["server"].key))
    try:
        db.start()
        yield db
    finally:
        db.cleanup()


def rendered_url(db: MariaDB, ca: Path) -> str:
    """The URL as render writes it for tls.database on (PyMySQL's ssl_ca and
    ssl_check_hostname), from the model itself."""
    tls = Tls(ca_file=str(ca), cert_file=None, key_file=None, nodes={}, api=False,
              bus=False, database=True)
    return database_url(db.url, tls)


def test_mariadb_link_is_encrypted_as_rendered(tls_broker, tls_mariadb, pki, tmp_path):
    """User congress is REQUIRE SSL: the PE and the DSD work only over TLS, with the
    server's certificate verified against the CA and its name (127.0.0.1)."""
    url = rendered_url(tls_mariadb, pki["ca"])
    assert "ssl_ca=" in url and "ssl_check_hostname=true" in url
    c = Cluster(tmp_path, tls_broker.tls_url, url, extra=bus_tls(pki["ca"]))
    c.seed_datasources(rate=20, window=50)
    pe = c.add_pe("pe1").start()
    dsd = c.add_dsd("dsd").start()
    try:
        wait_for(lambda: pe.healthy("api-pe", 20) and dsd.healthy("datasources", 20), 90,
                 "PE and DSD ready on MariaDB over TLS")
        wait_for(lambda: c.actions(), 30, "actions executed")
        # The service's sessions are there, and REQUIRE SSL makes each one TLS.
        out = tls_mariadb.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              "WHERE USER = 'congress'")
        assert int(out.strip()) >= 2, out
    finally:
        c.stop_all()


def test_a_mariadb_certificate_from_another_ca_is_refused_at_start(tls_broker, tls_mariadb,
                                                                   pki, tmp_path):
    c = Cluster(tmp_path, tls_broker.tls_url, rendered_url(tls_mariadb, pki["other"]),
                extra=bus_tls(pki["ca"]))
    r = start_once(c, "pe1", ["--api", "--policy-engine"])
    assert r.returncode != 0
    assert "certificate verify failed" in r.stderr + r.stdout, r.stderr[-2000:]
    assert "s3cret-maria" not in r.stderr + r.stdout  # the URL's password is masked
