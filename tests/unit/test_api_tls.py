"""The API's TLS listener ([api] tls_cert_file, tls_key_file): clear start errors for
every unusable file, HTTPS only when on, and the health check's verification."""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from congress_ha.config import ConfigError, parse_file
from congress_ha.lab import tls as ca_tools
from tests.support.broker import free_port
from tests.support.procs import wait_for

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None and os.environ.get("CI")
                                != "true", reason="openssl CLI missing")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    ca = ca_tools.make_ca(base / "ca", "test CA")
    node = ca_tools.issue(ca, base / "ca", "api", ["localhost"], ["127.0.0.1"])
    other_ca = ca_tools.make_ca(base / "other", "another CA")
    other = ca_tools.issue(other_ca, base / "other", "api", ["localhost"], ["127.0.0.1"])
    return {"ca": ca, "node": node, "other_ca": other_ca, "other": other, "base": base}


def conf(tmp_path, port: int, cert, key, ca=None, extra: str = "") -> str:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    text = (f"[DEFAULT]\ntransport_url = fake://\nnode_id = t1\n"
            f"[api]\nbind_host = 127.0.0.1\nbind_port = {port}\n")
    if cert is not None:
        text += f"tls_cert_file = {cert}\n"
    if key is not None:
        text += f"tls_key_file = {key}\n"
    if ca is not None:
        text += f"tls_ca_file = {ca}\n"
    text += (f"[database]\nconnection = sqlite:///{tmp_path / 'db.sqlite'}\n"
             f"[ha]\nrun_dir = {run}\n{extra}")
    path = tmp_path / "congress-ha.conf"
    path.write_text(text)
    return str(path)


def context_error(path: str) -> str:
    from congress_ha.api.tls import server_context

    with pytest.raises(ConfigError) as exc:
        server_context(parse_file(path))
    return str(exc.value)


def test_a_certificate_without_its_key_is_refused_when_the_file_is_read(tmp_path, pki):
    path = conf(tmp_path, 1, pki["node"].cert, None)
    with pytest.raises(ConfigError, match=r"\[api\] tls_cert_file is set but tls_key_file"):
        parse_file(path)


def test_a_relative_path_is_refused(tmp_path, pki):
    path = conf(tmp_path, 1, "api.pem", "api.key")
    with pytest.raises(ConfigError, match="must be an absolute path"):
        parse_file(path)


def test_a_missing_certificate_names_the_option_and_the_path(tmp_path, pki):
    message = context_error(conf(tmp_path, 1, tmp_path / "nope.pem", pki["node"].key))
    assert "[api] tls_cert_file" in message and "nope.pem: no such file" in message


def test_a_key_of_another_certificate_is_named_a_mismatch(tmp_path, pki):
    message = context_error(conf(tmp_path, 1, pki["node"].cert, pki["other"].key))
    assert "[api] tls_key_file" in message and "is not the key of tls_cert_file" in message


def test_swapped_files_are_recognised(tmp_path, pki):
    message = context_error(conf(tmp_path, 1, pki["node"].key, pki["node"].cert))
    assert "holds no PEM certificate" in message and "swap" in message


def test_a_world_readable_key_is_refused(tmp_path, pki):
    key = tmp_path / "open.key"
    shutil.copy(pki["node"].key, key)
    os.chmod(key, 0o644)
    message = context_error(conf(tmp_path, 1, pki["node"].cert, key))
    assert "readable by every user" in message and f"chmod 600 {key}" in message


def test_a_key_the_service_cannot_read_is_named(tmp_path, pki, monkeypatch):
    from congress_ha.api import tls

    real_open = open

    def deny(path, *args, **kw):
        if str(path) == str(pki["node"].key):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kw)

    monkeypatch.setattr(tls, "open", deny, raising=False)
    message = context_error(conf(tmp_path, 1, pki["node"].cert, pki["node"].key))
    assert "[api] tls_key_file" in message and "cannot be read by this process" in message


def test_the_server_refuses_to_start_with_a_mismatched_key_in_one_line(tmp_path, pki):
    path = conf(tmp_path, free_port(), pki["node"].cert, pki["other"].key)
    r = subprocess.run([str(BIN / "congress-ha-server"), "--config-file", path, "--all"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "[api] tls_key_file" in r.stderr and "is not the key of" in r.stderr


@pytest.fixture
def tls_server(tmp_path, pki):
    port = free_port()
    path = conf(tmp_path, port, pki["node"].cert, pki["node"].key, pki["ca"].cert)
    log = open(tmp_path / "server.log", "ab")
    proc = subprocess.Popen([str(BIN / "congress-ha-server"), "--config-file", path, "--all"],
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        yield {"port": port, "conf": path, "proc": proc, "tmp": tmp_path}
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
        log.close()


def get(port: int, ca: Path | None, path: str = "/healthz", **kw) -> int:
    if ca is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    else:
        ctx = ssl.create_default_context(cafile=str(ca))
        for k, v in kw.items():
            setattr(ctx, k, v)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def ctl_health(path: str, depth: int = 10) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "congress-ha-ctl"), "health", "--role", "api-pe",
                           "--depth", str(depth), "--config-file", path],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion")
def test_the_api_answers_over_https_only(tls_server, pki):
    port = tls_server["port"]
    wait_for(lambda: ctl_health(tls_server["conf"]).returncode == 0, 60, "the API up")
    assert get(port, pki["ca"].cert) == 200
    assert get(port, pki["ca"].cert, "/v1/policies") == 200
    # Plain HTTP on the TLS port gets no answer at all.
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        get(port, None)
    # A client that trusts another CA refuses the server's certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        get(port, pki["other_ca"].cert)
    # TLS 1.1 and older are refused by the server.
    with pytest.raises(ssl.SSLError):
        get(port, pki["ca"].cert, minimum_version=ssl.TLSVersion.TLSv1,
            maximum_version=ssl.TLSVersion.TLSv1_1)


def test_keep_alive_and_large_bodies_pass_through_the_tls_front(tls_server, pki):
    port = tls_server["port"]
    wait_for(lambda: ctl_health(tls_server["conf"]).returncode == 0, 60, "the API up")
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        for _ in range(5):  # one connection, five requests
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
        big = b'{"name": "p", "description": "' + b"x" * 300_000 + b'"}'
        conn.request("POST", "/v1/policies", body=big,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status in (201, 400), body[:200]  # the API read and judged it whole
    finally:
        conn.close()


def test_the_health_check_verifies_the_api_with_tls_ca_file(tls_server, pki):
    wait_for(lambda: ctl_health(tls_server["conf"]).returncode == 0, 60, "the API up")
    wrong = Path(tls_server["conf"])
    wrong.write_text(wrong.read_text().replace(str(pki["ca"].cert), str(pki["other_ca"].cert)))
    r = ctl_health(str(wrong))
    assert r.returncode == 1
    assert "certificate verify failed" in r.stdout


def test_a_server_with_tls_stops_promptly(tls_server, pki):
    wait_for(lambda: ctl_health(tls_server["conf"]).returncode == 0, 60, "the API up")
    # An idle keep-alive connection open through the front must not hold the stop.
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    conn = http.client.HTTPSConnection("127.0.0.1", tls_server["port"], timeout=10, context=ctx)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    started = time.monotonic()
    tls_server["proc"].terminate()
    assert tls_server["proc"].wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    conn.close()
