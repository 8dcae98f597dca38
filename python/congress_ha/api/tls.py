"""The API's TLS settings: [api] tls_cert_file, tls_key_file and tls_ca_file.

``server_context`` loads the certificate and key and turns every way that can
fail into a ConfigError that names the option and the fix, so a bad file stops
the server at start with one line, not a traceback. ``client_context`` is what
congress-ha-ctl's health check verifies the API with. The listener itself is
in tls_front.py (asyncio: kept off the health path, which imports this).
"""

from __future__ import annotations

import os
import ssl
import stat
from typing import Any

from congress_ha.config import ConfigError


def enabled(settings: Any) -> bool:
    return bool(getattr(settings.api, "tls_cert_file", None))


def _readable(where: str, option: str, path: str) -> tuple[bytes, os.stat_result]:
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{where}: [api] {option} = {path}: no such file; install the "
                          "file there or correct the path") from None
    except PermissionError:
        raise ConfigError(f"{where}: [api] {option} = {path}: cannot be read by this "
                          f"process (uid {os.geteuid()}); make it readable by the "
                          "service's user (chown/chmod)") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: [api] {option} = {path} is a folder; name the "
                          "PEM file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: [api] {option} = {path}: cannot be read "
                          f"({exc.strerror})") from None
    return data, st


def server_context(settings: Any, where: str | None = None) -> ssl.SSLContext:
    """The TLS context of the API's listener (ConfigError when a file is unusable)."""
    where = where or getattr(settings, "path", "congress-ha.conf")
    cert = settings.api.tls_cert_file
    key = settings.api.tls_key_file
    cert_pem, _ = _readable(where, "tls_cert_file", cert)
    key_pem, key_stat = _readable(where, "tls_key_file", key)
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        hint = (" (it holds a private key: swap tls_cert_file and tls_key_file?)"
                if b"PRIVATE KEY-----" in cert_pem else "")
        raise ConfigError(f"{where}: [api] tls_cert_file = {cert} holds no PEM certificate"
                          f"{hint}; give the server's certificate (-----BEGIN CERTIFICATE-----)")
    if b"PRIVATE KEY-----" not in key_pem:
        raise ConfigError(f"{where}: [api] tls_key_file = {key} holds no PEM private key; "
                          "give the key of tls_cert_file, unencrypted "
                          "(-----BEGIN PRIVATE KEY-----)")
    if b"ENCRYPTED" in key_pem:
        raise ConfigError(f"{where}: [api] tls_key_file = {key} is encrypted with a "
                          "passphrase, which a service started by Pacemaker cannot type; "
                          "store it unencrypted (openssl pkey -in KEY -out KEY.new), mode 0600")
    if key_stat.st_mode & stat.S_IROTH:
        raise ConfigError(f"{where}: [api] tls_key_file = {key} is readable by every user "
                          f"(mode {stat.S_IMODE(key_stat.st_mode):04o}); it is a private "
                          f"key: chmod 600 {key}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(f"{where}: [api] tls_key_file = {key} is not the key of "
                              f"tls_cert_file = {cert}; give the key the certificate was "
                              "issued for (compare `openssl x509 -noout -pubkey -in CERT` "
                              "with `openssl pkey -pubout -in KEY`)") from None
        raise ConfigError(f"{where}: [api] tls_cert_file = {cert} / tls_key_file = {key}: "
                          f"OpenSSL cannot load them ({exc.reason or exc}); give a PEM "
                          "certificate and its unencrypted PEM key") from None
    return ctx


def client_context(settings: Any, check_hostname: bool) -> ssl.SSLContext:
    """What a client on this node (the health check) uses: [api] tls_ca_file or the
    system's CAs, TLS 1.2+."""
    ctx = ssl.create_default_context(cafile=settings.api.tls_ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    return ctx
