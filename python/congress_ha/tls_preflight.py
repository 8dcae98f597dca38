"""One TLS handshake with the broker before the server joins the bus.

With ``[oslo_messaging_rabbit] ssl = true`` a certificate the CA did not sign,
a name that does not match, or a plain AMQP port makes oslo.messaging retry
forever with a log line per attempt; the process would hang in its start. This
check makes the same handshake oslo.messaging will (the same CA, the host of
transport_url as the name to verify) and turns a refusal into a ConfigError
that names the option and the fix.
"""

from __future__ import annotations

import configparser
import socket
import ssl
from urllib.parse import urlsplit

from congress_ha.config import ConfigError

SECTION = "oslo_messaging_rabbit"


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "yes", "1", "on")


def check_bus(config_file: str, transport_url: str, timeout: float = 5.0) -> None:
    """Raise ConfigError when the broker's TLS would be refused; no-op without TLS."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_file, encoding="utf-8")
    if not parser.has_section(SECTION) or not _bool(parser[SECTION].get("ssl", "false")):
        return
    ca = parser[SECTION].get("ssl_ca_file", "").strip() or None
    where = f"{config_file}: [{SECTION}]"
    if ca is None:
        # oslo.messaging then checks neither the chain nor the name (its own help).
        raise ConfigError(f"{where} ssl = true without ssl_ca_file: the broker's "
                          "certificate would not be verified; set ssl_ca_file to the CA "
                          "that signed RabbitMQ's certificate")
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where} ssl_ca_file = {ca}: cannot be loaded "
                          f"({getattr(exc, 'strerror', None) or exc}); give a PEM CA "
                          "certificate") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    netloc = urlsplit(transport_url).netloc.rsplit("@", 1)[-1]
    hosts = [h for h in netloc.split(",") if h]
    # oslo.messaging verifies the name only with one host (impl_rabbit: one
    # server_hostname); the chain always.
    ctx.check_hostname = len(hosts) == 1
    for part in hosts:
        host, _, port = part.rpartition(":") if ":" in part.rsplit("]", 1)[-1] else (part, "",
                                                                                      "5672")
        host = host.strip("[]") or "localhost"
        try:
            with socket.create_connection((host, int(port or 5672)), timeout=timeout) as raw, \
                    ctx.wrap_socket(raw, server_hostname=host):
                return
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError(
                f"{where} ssl_ca_file = {ca}: the broker at {host}:{port} is not trusted "
                f"({exc.verify_message}); give the CA that signed RabbitMQ's certificate, "
                "or a certificate that names this host (subjectAltName)") from None
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{where} ssl = true, but {host}:{port} does not complete a TLS handshake "
                f"({exc.reason or exc}): is it RabbitMQ's plain port? Its TLS listener is "
                "usually 5671 (transport_url)") from None
        except (OSError, ValueError):
            continue  # unreachable: check_reachable says so with its own message
