"""A private RabbitMQ broker on loopback and random ports, for tests and benches.

Started as user rabbitmq with its own node name, folders and ports, so it never
meets a system broker or another run's.  Stopped by the PID it recorded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_broker(prefix: str, tls: tuple[Path, Path, Path] | None = None):
    """A started Broker, cleaned up (process and folder) however the block ends.

    ``tls``: (certificate, key, CA) of a TLS listener beside the plain one."""
    broker = Broker(prefix=prefix, tls=tls)
    try:
        broker.start()
        yield broker
    finally:
        broker.cleanup()


class Broker:
    def __init__(self, prefix: str = "chtest", tls: tuple[Path, Path, Path] | None = None):
        self.base = Path(tempfile.mkdtemp(prefix=f"{prefix}-rabbit-"))
        self.port = free_port()
        # TLS (optional): certificate, key and CA, copied where user rabbitmq reads them.
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.epmd: subprocess.Popen | None = None
        self.nodename = f"{prefix}{os.getpid()}{self.port}@localhost"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.port}/"

    @property
    def tls_url(self) -> str:
        """The TLS listener's URL (clients need [oslo_messaging_rabbit] ssl options)."""
        assert self.tls_port, "this broker has no TLS listener"
        return f"rabbit://guest:guest@127.0.0.1:{self.tls_port}/"

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        """rabbitmqctl against this broker (as user rabbitmq: its Erlang cookie)."""
        return subprocess.run(["rabbitmqctl", "-n", self.nodename, *args], env=self._env(),
                              capture_output=True, text=True, timeout=60, check=False,
                              user="rabbitmq", group="rabbitmq")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbit.pid"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "HOME": "/var/lib/rabbitmq",
        })
        return env

    def start(self, timeout: float = 60.0) -> None:
        if shutil.which("rabbitmq-server") is None and not os.path.exists(
                "/usr/sbin/rabbitmq-server"):
            raise RuntimeError("rabbitmq-server is not installed: run `make setup`")
        conf = (f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                "distribution.listener.interface = 127.0.0.1\n"
                "loopback_users = none\n"
                "log.console = false\n")
        if self.tls:
            tls_dir = self.base / "tls"
            tls_dir.mkdir(exist_ok=True)
            for name, src in zip(("cert.pem", "key.pem", "ca.pem"), self.tls, strict=True):
                shutil.copy(src, tls_dir / name)
                os.chmod(tls_dir / name, 0o600)
            conf += (f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                     f"ssl_options.cacertfile = {tls_dir / 'ca.pem'}\n"
                     f"ssl_options.certfile = {tls_dir / 'cert.pem'}\n"
                     f"ssl_options.keyfile = {tls_dir / 'key.pem'}\n"
                     "ssl_options.versions.1 = tlsv1.3\n"
                     "ssl_options.versions.2 = tlsv1.2\n"
                     "ssl_options.verify = verify_none\n"
                     "ssl_options.fail_if_no_peer_cert = false\n")
        (self.base / "rabbitmq.conf").write_text(conf)
        (self.base / "enabled_plugins").write_text("[].\n")
        for d in ("mnesia", "log"):
            (self.base / d).mkdir(exist_ok=True)
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for p in self.base.rglob("*"):
            shutil.chown(p, "rabbitmq", "rabbitmq")
        if self.epmd is None:
            # Our own epmd on a private port, in the foreground, so that its PID
            # is ours to stop (a daemonized, shared epmd would outlive the run).
            self.epmd = subprocess.Popen(
                ["epmd", "-port", str(self.epmd_port),
                 "-address", "127.0.0.1"],
                env=self._env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, user="rabbitmq", group="rabbitmq")
        self.proc = subprocess.Popen(
            ["/usr/sbin/rabbitmq-server"], env=self._env(),
            stdout=open(self.base / "stdout.log", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True, user="rabbitmq", group="rabbitmq")
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pidfile = self.base / "rabbit.pid"
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: see {self.base}/stdout.log")
            if pidfile.exists():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        pass
                    if self.tls_port:
                        with socket.create_connection(("127.0.0.1", self.tls_port), 0.5):
                            pass
                    self.pid = int(pidfile.read_text().strip())
                    return
                except (OSError, ValueError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"rabbitmq did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        """Stop the broker by the PIDs we recorded and wait until it is gone."""
        if self.proc is None:
            return
        targets = [self.proc.pid] + ([self.pid] if self.pid else [])
        for pid in targets:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not _wait_gone(targets, 30.0):
            for pid in targets:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _wait_gone(targets, 10.0)
        self.proc.wait(timeout=5)
        self.proc = None
        self.pid = None

    def kill(self) -> None:
        """SIGKILL the broker's VM: a crash, not a clean stop."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            _wait_gone([self.pid], 10.0)
        self.stop()

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        if self.epmd is not None:
            self.epmd.terminate()
            try:
                self.epmd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.epmd.kill()
                self.epmd.wait(timeout=5)
            self.epmd = None
        shutil.rmtree(self.base, ignore_errors=True)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                alive.append(pid)
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"
