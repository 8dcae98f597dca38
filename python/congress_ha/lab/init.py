"""PID 1 of a lab node: private mounts, hostname, then sshd and the node's services.

Run by the power switch as
`ip netns exec NODE unshare --mount --uts --ipc --pid --fork --mount-proc
--propagation private -- python -m congress_ha.lab.init NODE_DIR/node.json`.
It reaps every orphan of the node, and on SIGTERM stops the services in reverse
order (a clean shutdown); SIGKILL from the host is a power cut. Boot progress is
written to the node's status file so that the host can wait for it.
Standard library only: this runs in every node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from . import infra

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HANDLED = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


class Init:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.boot_id = os.environ.get("LAB_BOOT_ID", "")
        self.services: list[tuple[str, int]] = []  # start order
        self.exited: dict[int, int] = {}
        self.t0 = time.monotonic()

    # -- output -------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[{self.cfg['name']} init {time.monotonic() - self.t0:5.1f}s] {msg}", flush=True)

    def status(self, phase: str, error: str = "") -> None:
        data = {
            "boot_id": self.boot_id,
            "phase": phase,
            "error": error,
            "services": {name: pid for name, pid in self.services},
            "elapsed": round(time.monotonic() - self.t0, 3),
        }
        path = self.cfg["status_file"]
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)

    # -- processes ----------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], *, log: str, env: dict | None = None,
              cwd: str = "/", **kw) -> int:  # fmt: skip
        env = env or {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": "/root"}
        with open(log, "ab") as out:
            p = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True,
                **kw,
                # Single-threaded PID 1: the children must not inherit the blocked signals.
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED),  # noqa: PLW1509
            )  # fmt: skip
        self.services.append((name, p.pid))
        self.log(f"started {name} (pid {p.pid})")
        return p.pid

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.exited[pid] = status
            for name, spid in self.services:
                if spid == pid:
                    self.log(f"{name} (pid {pid}) exited, status {status}")

    def wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reap()
            if pid in self.exited:
                return True
            time.sleep(0.05)
        return False

    def stop(self, name: str, pid: int, sig: int, timeout: float) -> None:
        self.reap()
        if pid in self.exited:
            return
        self.log(f"stopping {name} (pid {pid})")
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if not self.wait_exit(pid, timeout):
            self.log(f"{name} did not stop within {timeout:.0f} s: SIGKILL")
            os.kill(pid, signal.SIGKILL)
            self.wait_exit(pid, 5)

    # -- boot -----------------------------------------------------------------------
    def mount(self) -> None:
        for src, dst in self.cfg["binds"]:
            subprocess.run(["mount", "--bind", src, dst], check=True)
        for dst, mode in self.cfg["tmpfs"]:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode={mode}", "tmpfs", dst],
                           check=True)  # fmt: skip
        for path, mode, user, group in self.cfg["run_dirs"]:
            os.makedirs(path, exist_ok=True)
            os.chmod(path, int(mode, 8))
            import shutil

            shutil.chown(path, user, group)

    def boot(self) -> None:
        self.mount()
        socket.sethostname(self.cfg["name"])
        self.status("mounted")
        self.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", self.cfg["sshd_config"]],
                   log="/var/log/sshd.log")  # fmt: skip
        if self.cfg["role"] == "infra":
            self.boot_infra()
        elif self.cfg["cluster"] or os.path.exists("/etc/corosync/corosync.conf"):
            # A --no-cluster node that was deployed since (Ansible wrote
            # corosync.conf) boots its cluster stack too, as a real host whose
            # services are enabled does after a power cycle or a fence.
            self.boot_cluster()
        self.status("ready")
        self.log("ready")

    def boot_cluster(self) -> None:
        self.spawn("corosync", ["corosync", "-f"], log="/var/log/corosync/console.log")
        deadline = time.monotonic() + 30
        while subprocess.run(["corosync-cfgtool", "-s"], check=False, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:  # fmt: skip
            self.reap()
            if time.monotonic() > deadline or self.services[-1][1] in self.exited:
                raise RuntimeError("corosync did not come up: see /var/log/corosync/")
            time.sleep(0.1)
        self.status("corosync")
        env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": "/root",
               "PCMK_logfile": "/var/log/pacemaker/pacemaker.log"}  # fmt: skip
        self.spawn("pacemakerd", ["pacemakerd"], env=env, log="/var/log/pacemaker/console.log")

    def boot_infra(self) -> None:
        infra.start_rabbitmq(self.spawn, self.log)
        infra.start_postgres(self.spawn, self.log, self.cfg["address"], self.cfg["secret"])
        self.status("postgresql")
        infra.wait_port(self.cfg["address"], infra.AMQP_PORT, 60)
        self.log("rabbitmq accepts connections")

    def shutdown(self) -> None:
        self.log("clean shutdown")
        self.status("stopping")
        for name, pid in reversed(self.services):
            if name == "pacemakerd":
                self.stop(name, pid, signal.SIGTERM, 120)
            elif name == "postgres":
                self.stop(name, pid, signal.SIGINT, 30)  # fast shutdown
            else:
                self.stop(name, pid, signal.SIGTERM, 30)
        self.status("stopped")
        self.log("stopped")

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            self.boot()
        except Exception as e:  # noqa: BLE001 - keep the node up so that it can be debugged
            self.log(f"boot failed: {e}")
            self.status("failed", str(e))
        while True:
            info = signal.sigtimedwait(HANDLED, 1.0)
            self.reap()
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                self.shutdown()
                return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        cfg = json.load(f)
    return Init(cfg).run()


if __name__ == "__main__":
    sys.exit(main())
