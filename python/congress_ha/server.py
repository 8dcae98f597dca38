"""congress-ha-server: runs the roles of one node (DESIGN.md 3.1).

    congress-ha-server --config-file F [--node-id ID] --api --policy-engine
    congress-ha-server --config-file F [--node-id ID] --datasources
    congress-ha-server --config-file F [--node-id ID] --all

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 when the process cannot
run (broker unreachable, duplicate node id, database), 2 for bad arguments or
configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from congress_ha.bus.messages import ROLE_ALL, ROLE_API_PE, ROLE_DATASOURCES
from congress_ha.config import DEFAULT_CONFIG_FILE, ConfigError, parse_file
from congress_ha.threads import MemberFilter, dead, why_dead
from congress_ha.timings import seconds

LOG = logging.getLogger("congress_ha.server")
STOP_BUDGET = seconds("STOP_BUDGET")  # SIGTERM to exit (congress_ha/timings.py)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="congress-ha-server",
                                description="Run the congress-ha roles of one node.")
    p.add_argument("--config-file", default=DEFAULT_CONFIG_FILE)
    p.add_argument("--node-id", help="overrides [DEFAULT] node_id")
    p.add_argument("--api", action="store_true", help="serve the REST API")
    p.add_argument("--policy-engine", action="store_true", help="run a policy engine")
    p.add_argument("--datasources", action="store_true", help="run the datasource drivers")
    p.add_argument("--all", action="store_true", help="everything in one process")
    args = p.parse_args(argv)
    if args.all:
        args.api = args.policy_engine = args.datasources = True
    if not (args.api or args.policy_engine or args.datasources):
        p.error("choose the roles: --api --policy-engine, --datasources, or --all")
    if args.api and not args.policy_engine:
        p.error("--api needs --policy-engine in the same process")
    return args


def role_name(args: argparse.Namespace) -> str:
    if args.policy_engine and args.datasources:
        return ROLE_ALL
    return ROLE_DATASOURCES if args.datasources else ROLE_API_PE


class Server:
    """The roles of one process, started and stopped in order."""

    def __init__(self, settings, args: argparse.Namespace):
        from congress_ha.bus.node import BusNode
        from congress_ha.bus.transport import Transport
        from congress_ha.metrics import Metrics

        self.settings = settings
        self.args = args
        self.role = role_name(args)
        self.transport = Transport(settings)
        self.node = BusNode(self.transport, settings.get("DEFAULT", "node_id"), self.role,
                            [self.role], settings.ha.heartbeat_interval,
                            settings.ha.peer_timeout)
        self.node.state_fn = self._heartbeat_state
        self.node.on_conflict = self._conflict
        self.metrics = Metrics(self.metrics_view)
        self.pe = None
        self.dsd = None
        self.api = None
        self.control = None
        self.stopping = threading.Event()
        self.exit_code = 0

    def start(self) -> None:
        from congress_ha.control import socket_path
        from congress_ha.control_server import ControlServer
        from congress_ha.store.db import open_engine, session_factory

        self.control = ControlServer(socket_path(self.settings.ha.run_dir, self.role),
                                     self.dispatch)
        self.control.start()
        sessions = session_factory(open_engine(self.settings.get("database", "connection")))
        if self.args.datasources:
            from congress_ha.roles.datasources import DatasourceRole

            self.dsd = DatasourceRole(self.settings, self.node, self.transport, sessions)
            self.dsd.prepare()
        self.node.start()  # may raise DuplicateMember
        if self.dsd is not None:
            self.dsd.start()
        if self.args.policy_engine:
            self._start_policy_engine(sessions)
        LOG.info("running (%s)", self.role)

    def _start_policy_engine(self, sessions) -> None:
        from congress_ha.engine import Engine
        from congress_ha.roles.dsd_client import DsdClient
        from congress_ha.roles.policies import PolicyManager
        from congress_ha.roles.policy_engine import PolicyEngineRole
        from congress_ha.store.policies import PolicyStore

        lock = threading.RLock()
        engine = Engine()
        self.pe = PolicyEngineRole(self.settings, self.node, self.transport, engine, lock)
        self.pe.observe_evaluation = self.metrics.evaluation_seconds.observe
        dsd_client = DsdClient(self.transport)
        policies = PolicyManager(engine, PolicyStore(sessions), lock, self.pe.send_actions,
                                 self.node.member)
        policies.broadcast = dsd_client.policy_changed
        policies.rebuild = self.pe.rebuild_engine
        policies.set_limits(self.settings)
        policies.schemas = self.pe.schemas
        self.pe.policies = policies
        self.pe.start()
        policies.ensure_defaults()
        if self.args.api:
            from congress_ha.api.app import ApiServer, create_app
            from congress_ha.roles.service import Service

            service = Service(self.pe, policies, sessions, dsd_client, self.status,
                              self.settings, ready_fn=self.serving)
            self.api = ApiServer(create_app(service, self.settings, metrics=self.metrics),
                                 self.settings.api.bind_host, self.settings.api.bind_port,
                                 self.settings)
            self.api.start()

    def stop(self) -> None:
        """Goodbye first so peers react at once, then drain and close."""
        steps = [("policy engine", self.pe.stop if self.pe else None),
                 ("datasources", self.dsd.stop if self.dsd else None),
                 ("goodbye", lambda: self.node.stop(goodbye=self.node.conflict is None)),
                 ("api", self.api.stop if self.api else None),
                 ("bus", self.transport.stop),
                 ("control socket", self.control.stop if self.control else None)]
        for name, step in steps:
            if step is None:
                continue
            started = time.monotonic()
            step()
            LOG.debug("stop: %s took %.3fs", name,
                      time.monotonic() - started)

    def _conflict(self, reason: str) -> None:
        self.exit_code = 1
        self.stopping.set()

    # -- views ----------------------------------------------------------------

    def _heartbeat_state(self) -> dict[str, Any]:
        ready, reason = self.ready()
        state: dict[str, Any] = {"ready": ready, "reason": reason}
        if self.dsd:
            state.update(self.dsd.heartbeat_state())
        return state

    def ready(self) -> tuple[bool, str]:
        broken = dead(self.threads())
        if broken:
            return False, "; ".join(broken)
        for part in (self.dsd, self.pe):
            if part is not None:
                ok, why = part.ready()
                if not ok:
                    return False, why
        if self.pe is None and self.dsd is None:
            return False, "starting"
        # The API starts last: until it listens this process is not ready, even
        # where every other role already is (the all-in-one mode).
        if self.args.api and (self.api is None or not self.api.listening()):
            return False, "API not listening yet"
        return True, "ready"

    def serving(self) -> dict[str, Any]:
        """What GET /readyz answers: health at depth 10, and a PE that holds the
        policies and every datasource (through a DSD failover too)."""
        answer = self._health(10)
        if answer["ok"] and self.pe is not None and not self.pe.serving():
            return {"ok": False, "reason": self.pe.ready()[1]}
        return answer

    def health(self, depth: int) -> dict[str, Any]:
        answer = self._health(depth)
        if self.dsd is not None:
            # The agent publishes it as a node attribute without a second call.
            answer["leader"] = self.dsd.heartbeat_state()["leader"]
        return answer

    def threads(self) -> list:
        """Every supervised background thread of this process."""
        out = list(self.node.threads())
        if self.pe is not None:
            out += self.pe.threads()
        if self.dsd is not None:
            out += self.dsd.threads()
        if self.api is not None:
            out += self.api.threads
        return out

    def _health(self, depth: int) -> dict[str, Any]:
        if depth < 10:
            return {"ok": True, "reason": f"{self.node.member} running"}
        broken = dead(self.threads())
        if broken:
            return {"ok": False, "reason": "; ".join(broken)}
        ok, why = self.node.bus_ok()
        if not ok:
            return {"ok": False, "reason": why}
        if self.node.conflict:
            return {"ok": False, "reason": self.node.conflict}
        if depth >= 20:
            ready, reason = self.ready()
            return {"ok": ready, "reason": reason}
        return {"ok": True, "reason": why}

    def status(self) -> dict[str, Any]:
        ready, reason = self.ready()
        out: dict[str, Any] = {
            "member": self.node.member, "node_id": self.node.node_id, "role": self.role,
            "incarnation": self.node.incarnation, "ready": ready, "reason": reason,
            "bus": self.node.bus_ok()[1], "bus_refused": self.transport.refusals(),
            "peers": self.node.peer_view()}
        if self.pe:
            out["policy_engine"] = self.pe.view()
        if self.dsd:
            out["datasources"] = {"leader": self.dsd.leader_view(),
                                  "seqs": self.dsd.heartbeat_state()["seqs"],
                                  "errors": self.dsd.errors,
                                  "journal_waiting": self.dsd.journal_waiting()}
        return out

    def metrics_view(self):
        """What the metrics show of this process, read now (congress_ha/metrics.py)."""
        from congress_ha.bus.contract import REFUSAL_KINDS
        from congress_ha.metrics import ProcessView

        threads: dict[str, bool] = {}
        for t in self.threads():
            if t is not None:  # one name twice (not expected): up only if both are
                threads[t.name] = threads.get(t.name, True) and why_dead(t) is None
        return ProcessView(
            role=self.role, ready=self.ready()[0], threads=threads,
            bus_refusals={**dict.fromkeys(REFUSAL_KINDS, 0), **self.transport.refusals()},
            dsd=self.dsd.metrics_view() if self.dsd else None,
            pe=self.pe.metrics_view() if self.pe else None)

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "ping":
            return {"ok": True}
        if cmd == "health":
            return self.health(int(request.get("depth", 0)))
        if cmd == "status":
            return self.status()
        if cmd == "leader":
            if not self.dsd:
                return {"ok": False, "reason": f"{self.node.member} runs no DSD"}
            return {"ok": True, "leader": self.dsd.leader_view()}
        if cmd == "metrics":
            return {"ok": True, "text": self.metrics.text()}
        return {"ok": False, "reason": f"unknown command {cmd!r}"}


def setup_logging(node_id: str, debug: bool) -> None:
    """Every line names its node (or its role's member, node:role), set here once."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s [%(member)s] %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(MemberFilter(node_id))
    # alembic: its dialect and plugins at every start; store/schema.py says what
    # happened to the schema.
    for noisy in ("oslo_messaging", "oslo.messaging", "oslo_service", "kombu", "amqp",
                  "waitress", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING if debug else logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    overrides = {("DEFAULT", "node_id"): args.node_id} if args.node_id else None
    try:
        settings = parse_file(args.config_file, overrides)
        transport_url = settings.get("DEFAULT", "transport_url")
        if transport_url.startswith("fake:") and not args.all:
            raise ConfigError(f"{args.config_file}: [DEFAULT] transport_url = fake:// works "
                              "only in one process (--all); use rabbit://... for a cluster")
        if (args.api or args.all) and settings.api.tls_cert_file:
            # Before the bus and the database: a bad certificate is one line at once.
            from congress_ha.api.tls import server_context

            server_context(settings)
    except ConfigError as exc:
        print(f"congress-ha-server: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.get("DEFAULT", "node_id"), settings.get("DEFAULT", "debug"))

    from congress_ha.bus.node import DuplicateMember
    from congress_ha.bus.transport import BusError, check_reachable
    from congress_ha.store.db import StoreError

    server = None
    try:
        check_reachable(transport_url, timeout=settings.ha.rpc_timeout * 5)
        from congress_ha.tls_preflight import check_bus

        check_bus(args.config_file, transport_url)
        server = Server(settings, args)
        stop = server.stopping
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
    except ConfigError as exc:
        print(f"congress-ha-server: {exc}", file=sys.stderr)
        _abort(server)
        return 2
    except (BusError, DuplicateMember, StoreError, RuntimeError, OSError) as exc:
        print(f"congress-ha-server: cannot run: {exc}", file=sys.stderr)
        _abort(server)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, log the rest
        LOG.debug("start failed", exc_info=True)
        print(f"congress-ha-server: cannot run: unexpected {type(exc).__name__}: {exc} "
              "(set [DEFAULT] debug = true for the traceback)", file=sys.stderr)
        _abort(server)
        return 1
    server.stopping.wait()
    started = time.monotonic()
    # A stop that hangs must not outlive Pacemaker's patience: hard exit.
    watchdog = threading.Timer(STOP_BUDGET, lambda: os._exit(server.exit_code or 1))
    watchdog.daemon = True
    watchdog.start()
    server.stop()
    LOG.info("stopped in %.2fs", time.monotonic() - started)
    return server.exit_code


def _abort(server: Server | None) -> None:
    if server is None:
        return
    try:
        server.node.stop(goodbye=False)
        server.transport.stop()
        if server.control:
            server.control.stop()
    except Exception:  # noqa: BLE001 - already failing; keep the first error
        pass


if __name__ == "__main__":
    sys.exit(main())
