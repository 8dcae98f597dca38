"""Fixtures for the OCF agent tests: the agents installed into a temp DESTDIR,
one private broker for the session, and a service folder (config, pid, log)
per test.  Agents run as Pacemaker would run them: OCF_* in the environment,
the action as the only argument.  With CI=true a missing tool fails the test
instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.broker import running_broker
from tests.support.procs import Cluster

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "resource-agents"
VENV_BIN = Path(sys.executable).parent
OCF_ROOT = "/usr/lib/ocf"
CI = os.environ.get("CI", "").lower() == "true"

OCF_SUCCESS, OCF_ERR_GENERIC, OCF_ERR_ARGS, OCF_ERR_UNIMPLEMENTED = 0, 1, 2, 3
OCF_ERR_PERM, OCF_ERR_INSTALLED, OCF_ERR_CONFIGURED, OCF_NOT_RUNNING = 4, 5, 6, 7


def need(tool: str) -> str:
    """The path of a tool; skip without it (fail under CI=true)."""
    path = shutil.which(tool) or next(
        (str(p) for p in (Path("/usr/sbin") / tool, Path("/usr/bin") / tool) if p.exists()),
        None)
    if path is None:
        (pytest.fail if CI else pytest.skip)(f"{tool} is not installed")
    return path


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def reason(self) -> str:
        """The ocf_exit_reason lines, joined."""
        return " | ".join(line.split(":", 1)[1] for line in self.stderr.splitlines()
                          if line.startswith("ocf-exit-reason:"))

    def __str__(self) -> str:
        return f"rc={self.rc} in {self.seconds:.2f}s\nstdout: {self.stdout}\nstderr: {self.stderr}"


class Service:
    """One node's files for one test: config, and per role a pid file and a log."""

    def __init__(self, base: Path, agents: Path, transport_url: str, node: str):
        self.base = base
        self.agents = agents
        self.node = node
        self.cluster = Cluster(base, transport_url)
        self.conf, self.run_dir = self.cluster.conf(node, None)
        self.bin = base / "bin"  # fakes go here, first on PATH
        self.bin.mkdir()

    def params(self, role: str) -> dict[str, str]:
        # user root: the test's files are root's (one test runs a server as nobody).
        return {"config": str(self.conf), "node_id": self.node, "user": "root",
                "pid": str(self.base / f"{role}.pid"), "log": str(self.base / f"{role}.log")}

    def env(self, role: str, **params: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCF_")}
        env.update({
            "OCF_ROOT": OCF_ROOT, "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": f"congress-{role}", "OCF_RESOURCE_TYPE": role,
            "PATH": f"{self.bin}:{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HA_RSCTMP": str(self.base / "rsctmp")})
        for key, value in {**self.params(role), **params}.items():
            env[f"OCF_RESKEY_{key}"] = value
        return env

    def agent(self, role: str, action: str, depth: int | None = None, probe: bool = False,
              timeout_ms: int = 20000, env: dict[str, str] | None = None,
              **params: str) -> Result:
        """Run one action as Pacemaker would; a monitor is recurring unless probe."""
        e = self.env(role, **params)
        e["OCF_RESKEY_CRM_meta_timeout"] = str(timeout_ms)
        e["OCF_RESKEY_CRM_meta_interval"] = "0" if probe or action != "monitor" else "10000"
        if depth is not None:
            e["OCF_CHECK_LEVEL"] = str(depth)
        e.update(env or {})
        started = time.monotonic()
        proc = subprocess.run([str(self.agents / role), action], env=e, capture_output=True,
                              text=True, timeout=timeout_ms / 1000 + 10)
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def pid(self, role: str) -> int | None:
        try:
            return int((self.base / f"{role}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def log(self, role: str) -> str:
        path = self.base / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def fake(self, name: str, body: str) -> Path:
        """An executable script on this service's PATH."""
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        return path

    def cleanup(self) -> None:
        """Stop what the agents started, both roles at once (by the PIDs they
        recorded), then SIGKILL whatever is left."""
        stops = []
        for role in ("api-pe", "datasources"):
            if self.pid(role) is not None:
                env = self.env(role)
                env.update(OCF_RESKEY_CRM_meta_timeout="15000", OCF_RESKEY_CRM_meta_interval="0")
                stops.append(subprocess.Popen([str(self.agents / role), "stop"], env=env,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        for proc in stops:
            proc.wait(timeout=30)
        for role in ("api-pe", "datasources"):
            pid = self.pid(role)
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """PID exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture(scope="session")
def agents() -> Path:
    """The agents as install.sh installs them, into a temp DESTDIR."""
    destdir = Path(tempfile.mkdtemp(prefix="chag-destdir-"))
    destdir.chmod(0o755)  # ocf-tester runs meta-data as user nobody
    subprocess.run(["sh", str(SOURCE / "install.sh")], env={**os.environ, "DESTDIR": str(destdir)},
                   check=True, capture_output=True)
    yield destdir / "usr/lib/ocf/resource.d/congress"
    shutil.rmtree(destdir, ignore_errors=True)


@pytest.fixture(scope="session")
def broker():
    with running_broker("chag") as b:
        yield b


@pytest.fixture
def service(request, agents):
    """A service folder whose config points at an unreachable broker (tests that
    need a real one use ``live_service``)."""
    s = make_service(request, agents, "rabbit://guest:guest@127.0.0.1:9/")
    yield s
    finish_service(request, s)


@pytest.fixture
def live_service(request, agents, broker):
    s = make_service(request, agents, broker.url)
    s.cluster.seed_datasources(rate=20, window=100)
    yield s
    finish_service(request, s)


def make_service(request, agents: Path, url: str) -> Service:
    base = Path(tempfile.mkdtemp(prefix="chag-svc-"))
    # A node id per test: a server still stopping from an earlier test must not
    # look like a duplicate of this one.
    node = "n" + request.node.name.replace("_", "-").replace("[", "-").strip("]")[-40:]
    return Service(base, agents, url, node)


def finish_service(request, s: Service) -> None:
    s.cleanup()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for role in ("api-pe", "datasources"):
            if s.log(role):
                print(f"==== {role} log ====\n{s.log(role)[-3000:]}")
    shutil.rmtree(s.base, ignore_errors=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
