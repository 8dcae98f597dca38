"""Real congress-ha-server processes on one host, for integration tests and benches.

Each process gets its own config file and run_dir under one temp folder; all
share a broker and a database.  Processes are stopped by the PIDs recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.broker import free_port

VENV_BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.05):
    """Poll until ``predicate()`` is truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop_popen(proc: subprocess.Popen | None, sig: int, timeout: float) -> None:
    """Stop a server we started, by its recorded PID: ``sig``, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Proc:
    def __init__(self, name: str, conf: Path, run_dir: Path, log: Path, roles: list[str],
                 api_port: int | None):
        self.name = name
        self.conf = conf
        self.run_dir = run_dir
        self.log = log
        self.roles = roles
        self.api_port = api_port
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> Proc:
        self.popen = subprocess.Popen(
            [str(VENV_BIN / "congress-ha-server"), "--config-file", str(self.conf),
             *self.roles],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"), start_new_session=True)
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen:
            self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> int:
        self.signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout) if self.popen else 0

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "congress-ha-ctl"), *args,
                               "--config-file", str(self.conf)],
                              capture_output=True, text=True, timeout=timeout)

    def healthy(self, role: str, depth: int = 20) -> bool:
        return self.ctl("health", "--role", role, "--depth", str(depth)).returncode == 0

    def status(self) -> dict:
        from congress_ha import control
        sock = next(iter(self.run_dir.glob("*.sock")), None)
        if sock is None:
            return {}
        try:
            return control.ask(str(sock), "status")
        except (control.NotRunning, OSError, ValueError):
            return {}

    def logtext(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """A set of server processes over one broker and one database."""

    def __init__(self, base: Path, transport_url: str, db_url: str | None = None,
                 extra: str = ""):
        self.base = base
        self.transport_url = transport_url
        self.db_url = db_url or f"sqlite:///{base / 'congress.sqlite'}"
        self.extra = extra
        self.procs: dict[str, Proc] = {}
        self.action_log = base / "actions.jsonl"

    def conf(self, name: str, api_port: int | None, extra: str = "") -> tuple[Path, Path]:
        run_dir = self.base / name / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.base / name / "congress-ha.conf"
        conf.write_text(
            f"[DEFAULT]\ntransport_url = {self.transport_url}\nnode_id = {name}\n"
            # CH_TEST_DEBUG=1 makes every test process log at DEBUG level.
            f"debug = {'true' if os.environ.get('CH_TEST_DEBUG') else 'false'}\n"
            f"[api]\nbind_host = 127.0.0.1\nbind_port = {api_port or free_port()}\n"
            f"[database]\nconnection = {self.db_url}\n"
            f"[bus]\nkey_file = {self.bus_key()}\n"
            # The file datasources of the tests keep their files under base.
            f"[drivers]\nfile_allowed_dirs = {self.base}\n"
            f"[ha]\nrun_dir = {run_dir}\n{self.extra}\n{extra}")
        return conf, run_dir

    def bus_key(self) -> Path:
        """The cluster's bus key, one file for all its processes (bus/seal.py)."""
        path = self.base / "bus.key"
        if not path.exists():
            from congress_ha.bus.seal import new_key
            path.write_text(new_key() + "\n")
            path.chmod(0o600)
        return path

    def add(self, name: str, roles: list[str], extra: str = "") -> Proc:
        api_port = free_port() if "--api" in roles or "--all" in roles else None
        conf, run_dir = self.conf(name, api_port, extra)
        proc = Proc(name, conf, run_dir, self.base / name / "server.log", roles, api_port)
        self.procs[name] = proc
        return proc

    def add_pe(self, name: str) -> Proc:
        return self.add(name, ["--api", "--policy-engine"])

    def add_dsd(self, name: str) -> Proc:
        return self.add(name, ["--datasources"])

    def seed_datasources(self, rate: float = 20.0, window: int = 50,
                         rule: str = "execute[out:log(n)] :- ticks:tick(n)") -> None:
        """A ticker, a file datasource logging actions, and a policy joining them."""
        from congress_ha.store.datasources import add_datasource, list_datasources
        from congress_ha.store.db import open_engine, session_factory
        from congress_ha.store.policies import PolicyStore

        sessions = session_factory(open_engine(self.db_url))
        if not list_datasources(sessions, enabled_only=False):
            add_datasource(sessions, "ticks", "ticker", {"rate": rate, "window": window})
            add_datasource(sessions, "out", "file", {"action_log": str(self.action_log)})
            store = PolicyStore(sessions)
            store.create_policy(store.revision(), "ticking", "", "ticks to actions",
                                "nonrecursive", rules=[(rule, "tick-log", "")])

    def actions(self) -> list[dict]:
        if not self.action_log.exists():
            return []
        out = []
        # Only whole lines: the DSD may be appending one while we read (the part
        # after the last newline is that line, not yet complete).
        for line in self.action_log.read_text().split("\n")[:-1]:
            if line.strip():
                out.append(json.loads(line))
        return out

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.running():
                proc.signal(signal.SIGTERM)
        for proc in self.procs.values():
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
