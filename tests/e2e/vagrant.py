"""The e2e driver for real machines: an Ansible inventory, reached over ssh.

``make vagrant-test`` points ``CONGRESS_HA_E2E_INVENTORY`` at the inventory
that Vagrant's ansible provisioner generated (any inventory of a deployed
cluster works: the groups are the playbook's, ``congress_api_pe`` and
``congress_datasources``).  Faults:

- kill: ``echo o > /proc/sysrq-trigger`` (power off at once, no shutdown),
  and ``vagrant up NODE`` to bring it back when ``CONGRESS_HA_E2E_VAGRANT_DIR``
  names the Vagrantfile's folder; without it, ``echo b`` (an immediate
  reboot: the machine comes back by itself);
- partition: iptables drops everything on the interface that holds the
  node's cluster address (ssh comes in through Vagrant's NAT interface);
- the action log is local to each machine: read from every one and joined
  (each action is written once, by the DSD that ran it).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from tests.e2e.lab import Driver, DriverError

GROUPS = ("congress_api_pe", "congress_datasources")
# Inside the default [drivers] file_allowed_dirs (the congress_ha role creates it).
LOG_DIR = "/var/lib/congress-ha/files/e2e"
_TAG = "congress-ha-e2e-partition"


class SshDriver(Driver):
    def __init__(self, name: str, hosts: dict[str, dict], vagrant_dir: str | None) -> None:
        self.name = name
        self.hosts = hosts
        self.nodes = list(hosts)
        self.vagrant_dir = vagrant_dir

    @classmethod
    def from_inventory(cls, path: str) -> SshDriver:
        """Read the inventory with ``ansible-inventory --list`` (INI or YAML alike)."""
        exe = os.path.join(os.path.dirname(os.path.realpath(sys.executable)),
                           "ansible-inventory")
        if not os.path.exists(exe):
            exe = "ansible-inventory"
        r = subprocess.run([exe, "-i", path, "--list"], capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            raise DriverError(f"ansible-inventory -i {path}: {r.stderr.strip()}")
        inv = json.loads(r.stdout)
        hostvars = inv.get("_meta", {}).get("hostvars", {})
        names: list[str] = []
        for group in GROUPS:
            for h in inv.get(group, {}).get("hosts", []):
                if h not in names:
                    names.append(h)
        if not names:
            raise DriverError(f"{path}: no host in groups {', '.join(GROUPS)}")
        hosts = {h: hostvars.get(h, {}) for h in names}
        return cls(os.path.basename(path), hosts,
                   os.environ.get("CONGRESS_HA_E2E_VAGRANT_DIR"))

    # -- ssh --------------------------------------------------------------------------
    def _ssh(self, node: str) -> list[str]:
        v = self.hosts[node]
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR"]
        if v.get("ansible_port"):
            argv += ["-p", str(v["ansible_port"])]
        if v.get("ansible_ssh_private_key_file"):
            argv += ["-i", str(v["ansible_ssh_private_key_file"])]
        argv += shlex.split(str(v.get("ansible_ssh_common_args", "")))
        user = v.get("ansible_user", "root")
        return argv + [f"{user}@{v.get('ansible_host', node)}"]

    def _sudo(self, node: str) -> list[str]:
        return [] if self.hosts[node].get("ansible_user", "root") == "root" else ["sudo", "-n"]

    def run(self, node, argv, timeout=30, input=None):
        remote = " ".join(shlex.quote(a) for a in self._sudo(node) + list(argv))
        try:
            return subprocess.run(self._ssh(node) + [remote], capture_output=True, text=True,
                                  timeout=timeout, input=input, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout}s")

    def sh(self, node: str, script: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return self.run(node, ["sh", "-c", script], timeout=timeout)

    # -- the Driver interface -------------------------------------------------------
    def address(self, node: str) -> str:
        v = self.hosts[node]
        return str(v.get("congress_ha_cluster_node_address") or v.get("ansible_host"))

    def kill(self, node: str) -> float:
        key = "o" if self.vagrant_dir else "b"
        t = time.time()
        # The connection dies with the machine: no answer is expected.
        self.sh(node, f"echo 1 > /proc/sys/kernel/sysrq; echo {key} > /proc/sysrq-trigger",
                timeout=10)
        return t

    def powered(self, node: str) -> bool:
        return self.sh(node, "true", timeout=10).returncode == 0

    def start(self, node: str) -> None:
        if self.vagrant_dir and not self.powered(node):
            r = subprocess.run(["vagrant", "up", node, "--no-provision"], cwd=self.vagrant_dir,
                               capture_output=True, text=True, timeout=600, check=False)
            if r.returncode != 0:
                raise DriverError(f"vagrant up {node}: {r.stdout}{r.stderr}")
        deadline = time.monotonic() + 300
        while not self.powered(node):
            if time.monotonic() > deadline:
                raise DriverError(f"{node} does not answer ssh after 300 s")
            time.sleep(2)
        # The playbook may leave the stack to be started by hand after a boot.
        r = self.sh(node, "pidof pacemakerd >/dev/null || systemctl start corosync pacemaker",
                    timeout=120)
        if r.returncode != 0:
            raise DriverError(f"cannot start corosync/pacemaker on {node}: {r.stderr}")

    def _iface(self, node: str) -> str:
        r = self.sh(node, f"ip -o -4 addr show to {shlex.quote(self.address(node))}")
        fields = r.stdout.split()
        if len(fields) < 2:
            raise DriverError(f"no interface with {self.address(node)} on {node}")
        return fields[1]

    def partition(self, node: str) -> float:
        i = self._iface(node)
        self.sh(node, f"iptables -I INPUT -i {i} -m comment --comment {_TAG} -j DROP && "
                      f"iptables -I OUTPUT -o {i} -m comment --comment {_TAG} -j DROP")
        return time.time()

    def heal(self, node: str) -> None:
        if not self.powered(node):
            return
        i = self._iface(node)
        self.sh(node, f"while iptables -D INPUT -i {i} -m comment --comment {_TAG} -j DROP; "
                      f"do :; done 2>/dev/null; while iptables -D OUTPUT -o {i} -m comment "
                      f"--comment {_TAG} -j DROP; do :; done 2>/dev/null; true")

    def shared_path(self, filename: str) -> str:
        for node in self.nodes:
            # The DSD runs as the service's user (made by the playbook): it appends there.
            self.run(node, ["install", "-d", "-o", "congress-ha", "-g", "congress-ha",
                            "-m", "0750", LOG_DIR])
        return f"{LOG_DIR}/{filename}"

    def read_text(self, path: str) -> str:
        parts = []
        for node in self.nodes:
            r = self.run(node, ["cat", path], timeout=30)
            if r.returncode == 0:
                parts.append(r.stdout if r.stdout.endswith("\n") or not r.stdout
                             else r.stdout + "\n")
        return "".join(parts)
