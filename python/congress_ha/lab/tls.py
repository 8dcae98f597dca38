"""A private certificate authority with the openssl CLI: the lab's, and the tests'.

``make_ca`` writes ca.pem and ca.key; ``issue`` a server certificate signed by
it, with the names and addresses a client checks (subjectAltName). Keys are
P-256 (quick to make; RabbitMQ, PostgreSQL and Python accept them) and written
0600. Standard library only: the lab's `up` runs it on the host.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CA_DAYS = 3650
CERT_DAYS = 825  # the most that browsers and most TLS clients accept for a leaf


class CaError(RuntimeError):
    """openssl could not make a key or a certificate (the message says which)."""


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise CaError(f"openssl {args[0]} failed: {r.stderr.strip().splitlines()[-1:]}")


def _private(path: Path) -> None:
    os.chmod(path, 0o600)


def make_ca(folder: Path, common_name: str) -> Issued:
    """A new CA in ``folder``: ca.pem (public) and ca.key (0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "ca.pem", folder / "ca.key"
    old = os.umask(0o077)  # the key is never readable by others, not even briefly
    try:
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(CA_DAYS),
                 "-subj", f"/CN={common_name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    finally:
        os.umask(old)
    _private(key)
    os.chmod(cert, 0o644)
    return Issued(cert, key)


def issue(ca: Issued, folder: Path, name: str, dns: Sequence[str] = (),
          ips: Sequence[str] = ()) -> Issued:
    """A server certificate NAME.pem + NAME.key (0600) in ``folder``, signed by ``ca``.

    ``dns`` and ``ips`` become its subjectAltName: what clients verify
    (``sslmode=verify-full``, oslo.messaging and curl check the address they
    connect to against it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    alt = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
    if not alt:
        raise CaError(f"{name}: a server certificate needs at least one name or address")
    with tempfile.TemporaryDirectory(prefix="congress-ha-ca-") as tmp:
        csr, ext = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        ext.write_text(f"subjectAltName={','.join(alt)}\n"
                       "basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n")
        old = os.umask(0o077)
        try:
            _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey",
                     str(ca.key), "-set_serial", str(secrets.randbits(63)), "-days",
                     str(CERT_DAYS), "-extfile", str(ext), "-out", str(cert))
        finally:
            os.umask(old)
    _private(key)
    os.chmod(cert, 0o644)
    return Issued(cert, key)
