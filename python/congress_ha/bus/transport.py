"""oslo.messaging, wrapped: topics, fanout casts, calls with a timeout and retry.

Every topic lives on exchange ``congress_ha``; which topics there are and what
each carries is the bus contract (``contract.py``), which sends through this.

Each server runs with a pool of one thread, so the messages of one topic are
handled in arrival order (deltas must be).  Every send carries a bounded
``retry``: a down broker gives ``BusError`` instead of a hang.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from typing import Any

from congress_ha.bus.seal import Sealer, read_keys
from congress_ha.config import Settings, broker_hosts, oslo_conf

with warnings.catch_warnings():
    # oslo.messaging 18.x imports eventlet, which warns that it is deprecated;
    # we use the threading executor and never monkey-patch.
    warnings.simplefilter("ignore")
    import oslo_messaging as om
    from kombu import exceptions as kombu_exceptions

LOG = logging.getLogger(__name__)
EXCHANGE = "congress_ha"
# Topics whose queues are quorum queues (durable, replicated): the DSD's
# (contract.TOPIC_DSD), where a request waits for whichever DSD runs next. They
# live on an exchange of their own: RabbitMQ refuses to declare one exchange
# both durable (what a quorum queue's side asks) and transient (the others').
DURABLE_TOPICS = frozenset({"dsd"})
DURABLE_EXCHANGE = "congress_ha_durable"


def exchange_of(topic: str) -> str:
    return DURABLE_EXCHANGE if topic in DURABLE_TOPICS else EXCHANGE


class BusError(Exception):
    """The bus could not deliver or answer; the message says why."""


def check_reachable(transport_url: str, timeout: float) -> None:
    """Fail fast and clearly when no broker of ``transport_url`` accepts TCP.

    oslo.messaging would block in ``server.start()`` with the broker down.
    """
    if transport_url.startswith("fake:"):
        return
    hosts = broker_hosts(transport_url)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        for host, port in hosts:
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    return
            except OSError as exc:
                last = f"{host}:{port}: {exc.strerror or exc}"
        if time.monotonic() >= deadline:
            raise BusError(f"cannot reach the message broker ({last}) within {timeout:.0f}s; "
                           "check [DEFAULT] transport_url and that RabbitMQ runs")
        time.sleep(0.2)


class Transport:
    """One process's connection to the bus."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.conf = oslo_conf(settings)
        self.timeout = settings.ha.rpc_timeout
        self.retry = settings.ha.rpc_retry
        key_file = settings.get("bus", "key_file")
        self.sealer = Sealer(read_keys(key_file) if key_file else None,
                             sender=settings.get("DEFAULT", "node_id"),
                             max_age=settings.get("bus", "max_message_age"))
        self.transport = om.get_rpc_transport(
            self.conf, url=settings.get("DEFAULT", "transport_url"))
        _rabbit_defaults(self.conf, durable=False)
        self._durable: Any = None  # the transport of durable servers, made on first use
        self._servers: list[Any] = []
        self._endpoints: list[Any] = []
        self._clients: dict[tuple[str, bool], Any] = {}

    def _client(self, topic: str, fanout: bool = False):
        key = (topic, fanout)
        if key not in self._clients:
            target = om.Target(exchange=exchange_of(topic), topic=topic, fanout=fanout)
            # The sender declares the exchange too, so it must agree on durability.
            transport = (self._durable_transport() if topic in DURABLE_TOPICS
                         else self.transport)
            self._clients[key] = om.get_rpc_client(
                transport, target, timeout=self.timeout, retry=self.retry)
        return self._clients[key]

    def serve(self, topic: str, server: str, endpoint: object):
        """Handle ``topic`` (its fanout and shared queue) with ``endpoint``'s methods.

        A topic of DURABLE_TOPICS gets quorum queues, which keep what the
        broker confirmed across a broker restart (the ``dsd`` topic, whose
        server name is stable). The others stay transient: their server names
        carry the process's incarnation, and a durable queue per incarnation
        would pile up on the broker. Returns the server, for a caller that must
        stop consuming early.
        """
        target = om.Target(exchange=exchange_of(topic), topic=topic, server=server)
        durable = topic in DURABLE_TOPICS
        transport = self._durable_transport() if durable else self.transport
        srv = om.get_rpc_server(transport, target, [endpoint])
        # The server registers this option; one handler thread per server keeps
        # each topic in arrival order.
        transport.conf.set_override("executor_thread_pool_size", 1)
        srv.start()
        self._servers.append(srv)
        self._endpoints.append(endpoint)
        return srv

    def _durable_transport(self):
        if self._durable is None:
            conf = oslo_conf(self.settings)
            self._durable = om.get_rpc_transport(
                conf, url=self.settings.get("DEFAULT", "transport_url"))
            _rabbit_defaults(conf, durable=True)
        return self._durable

    def refusals(self) -> dict[str, int]:
        """Messages dropped by this process's endpoints, by kind (forged, stale,
        replayed, invalid, unsupported): bus/contract.py."""
        out: dict[str, int] = {}
        for endpoint in self._endpoints:
            for kind, n in endpoint.refusals.items():
                out[kind] = out.get(kind, 0) + n
        return out

    def unserve(self, srv) -> None:
        """Stop one server now: what it has not taken stays in its queue."""
        if srv in self._servers:
            self._servers.remove(srv)
            _stop_server(srv)

    # ``seal`` (seal.py) travels as the message's oslo.messaging context.
    def broadcast(self, topic: str, method: str, args: dict[str, Any], seal: dict[str, Any],
                  retry: int | None = None) -> None:
        """Fanout cast to every server of ``topic``."""
        self._send(self._client(topic, fanout=True), "cast", method, retry, args, seal)

    def cast(self, topic: str, method: str, args: dict[str, Any], seal: dict[str, Any],
             retry: int | None = None) -> None:
        self._send(self._client(topic), "cast", method, retry, args, seal)

    def call(self, topic: str, method: str, args: dict[str, Any], seal: dict[str, Any],
             timeout: float | None = None, retry: int | None = None) -> Any:
        return self._send(self._client(topic), "call", method, retry, args, seal, timeout)

    def _send(self, client, kind, method, retry, kwargs, seal, timeout=None):
        opts: dict[str, Any] = {}
        if retry is not None:
            opts["retry"] = retry
        if timeout is not None:
            opts["timeout"] = timeout
        ctx = client.prepare(**opts) if opts else client
        try:
            return getattr(ctx, kind)({"seal": seal}, method, **kwargs)
        except om.MessagingTimeout:
            raise BusError(f"no reply to {method} within "
                           f"{timeout or self.timeout:.1f}s ([ha] rpc_timeout)") from None
        except om.MessageDeliveryFailure as exc:
            raise BusError(f"could not deliver {method}: the broker is unreachable "
                           f"({_first_line(exc)})") from None
        except om.MessagingException as exc:
            raise BusError(f"{method} failed on the bus: {_first_line(exc)}") from None
        except (OSError, ConnectionError, kombu_exceptions.KombuError) as exc:
            # oslo.messaging lets kombu's connection errors through when it
            # opens a new pooled connection to a broker that is down.
            raise BusError(f"could not deliver {method}: the broker is unreachable "
                           f"({_first_line(exc)})") from None

    def stop(self) -> None:
        """Stop every server at once: each takes up to its listener's poll
        timeout (about 1 s) to wind down, so one after another was 3-4 s."""
        threads = [threading.Thread(target=_stop_server, args=(srv,), daemon=True)
                   for srv in self._servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=2.0)
        self._servers.clear()
        # cleanup() closes the connection pool and the reply listener of our
        # calls; the latter can take seconds to notice. Bounded: at exit the
        # kernel closes what is left and the broker drops it.
        closers = [threading.Thread(target=t.cleanup, daemon=True)
                   for t in (self.transport, self._durable) if t is not None]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(timeout=1.0)


def _rabbit_defaults(conf, durable: bool) -> None:
    """Defaults for the rabbit driver that HA needs; the config file may override.

    - prefetch 1: a consumer that died without closing its connection (its
      node cut off) holds at most one message, instead of receiving every
      other request of the shared ``dsd`` queue until the broker notices;
    - AMQP heartbeat threshold 6 s (oslo's default: 60 s): RabbitMQ 3.10
      closed a frozen consumer's connection after 17-19 s (measured, bench
      infra), and then requeues what it held, for the live DSD;
    - a reconnect every second while the broker is away (oslo.messaging's
      default backs off to 30 s, which measured 5-10 s from the broker's
      return to the DSD consuming again);
    - ``durable``: quorum queues (``Transport.serve``): a request the broker
      confirmed (oslo.messaging publishes with confirms) is on disk and
      survives a broker restart. Otherwise never quorum, whatever the file says.
    """
    if not durable:
        try:
            conf.set_override("rabbit_quorum_queue", False, group="oslo_messaging_rabbit")
        except Exception:  # noqa: BLE001 - not the rabbit driver (fake://)
            pass
    for name, value in (("rabbit_quorum_queue", durable),
                        # Reconnect every second, not with a growing pause (up
                        # to 30 s): a broker back after an outage is used at once.
                        ("rabbit_retry_backoff", 0),
                        ("rabbit_interval_max", 1),
                        ("rabbit_qos_prefetch_count", 1),
                        ("heartbeat_timeout_threshold", 6),
                        ("heartbeat_rate", 3)):
        try:
            conf.set_default(name, value, group="oslo_messaging_rabbit")
        except Exception:  # noqa: BLE001 - not the rabbit driver (fake://)
            pass


def _stop_server(srv) -> None:
    started = time.monotonic()
    try:
        srv.stop()
        stopped = time.monotonic()
        srv.wait()
        LOG.debug("server stopped in %.3fs, drained in %.3fs", stopped - started,
                  time.monotonic() - stopped)
    except Exception:  # noqa: BLE001 - best effort at shutdown
        LOG.debug("server stop failed", exc_info=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
