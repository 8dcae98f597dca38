"""A node seen from the host: its private folders, its PID 1's config, how to boot it,
how to enter it, and what runs in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from congress_ha.cluster.model import DEFAULT_SERVICE_USER

from . import cluster, infra
from . import tls as lab_tls
from .plan import NODE_TLS_DIR, LabPlan, NodePlan, hosts_file
from .state import ProcRecord, node_pids, read_json, write_json

# The service's system user (and group) under the agents, made by `up` on the
# host, whose /etc/passwd the nodes share.
SERVICE_USER = DEFAULT_SERVICE_USER

# Private directories of every node: (mount point, owner, group, mode, subdirs).
COMMON_DIRS = [
    ("/etc/congress-ha", "root", "root", 0o755, []),
    ("/var/log", "root", "root", 0o755, []),
]
CLUSTER_DIRS = [
    ("/etc/corosync", "root", "root", 0o755, []),
    ("/var/lib/corosync", "root", "root", 0o755, []),
    ("/var/lib/pacemaker", "root", "root", 0o755, []),
]
INFRA_DIRS = [
    ("/etc/rabbitmq", "root", "root", 0o755, []),
    ("/var/lib/rabbitmq", "rabbitmq", "rabbitmq", 0o755, []),
    ("/var/lib/postgresql", "postgres", "postgres", 0o755, []),
]
# Inside the private /var/lib/pacemaker and /var/log: what the packages create.
SUBDIRS = [
    ("var/lib/pacemaker/blackbox", "hacluster", "haclient", 0o750),
    ("var/lib/pacemaker/cib", "hacluster", "haclient", 0o750),
    ("var/lib/pacemaker/cores", "hacluster", "haclient", 0o750),
    ("var/lib/pacemaker/pengine", "hacluster", "haclient", 0o750),
    ("var/log/corosync", "root", "root", 0o755),
    ("var/log/pacemaker", "hacluster", "haclient", 0o770),
    ("var/log/pacemaker/bundles", "hacluster", "haclient", 0o770),
    ("var/log/crmsh", "hacluster", "haclient", 0o775),  # crmsh crashes without it
]
INFRA_SUBDIRS = [
    ("var/log/rabbitmq", "rabbitmq", "rabbitmq", 0o755),
    ("var/log/postgresql", "postgres", "postgres", 0o755),
]
# /tmp stays shared with the host: the checkout (and its .venv) that nodes run
# may live there, as a CI clone often does.
TMPFS = [["/run", "755"], ["/dev/shm", "1777"]]
RUN_DIRS = [
    ["/run/sshd", "755", "root", "root"],
    ["/run/lock", "1777", "root", "root"],
]
INFRA_RUN_DIRS = [["/run/postgresql", "2775", "postgres", "postgres"]]


def private_dirs(plan: LabPlan, node: NodePlan) -> list[tuple[str, str, str, int, list]]:
    dirs = list(COMMON_DIRS)
    dirs += INFRA_DIRS if node.role == "infra" else CLUSTER_DIRS
    return dirs


def sshd_config(plan: LabPlan, node: NodePlan) -> str:
    ndir = plan.node_dir(node)
    return (
        f"# congress-ha-lab {plan.name}: sshd of {node.name}\n"
        f"ListenAddress {node.address}\n"
        "Port 22\n"
        f"HostKey {ndir}/ssh_host_ed25519_key\n"
        f"AuthorizedKeysFile {plan.state_dir}/ssh/authorized_keys\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        # No PAM: there is no systemd-logind and no login session to set up.
        "UsePAM no\n"
        # The key lives under /var/tmp (mode 1777), which StrictModes would refuse.
        "StrictModes no\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "PidFile /run/sshd.pid\n"
        "AcceptEnv LANG LC_*\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def init_config(plan: LabPlan, node: NodePlan) -> dict:
    ndir = plan.node_dir(node)
    binds = [[str(ndir / "root" / d.lstrip("/")), d] for d, *_ in private_dirs(plan, node)]
    binds += [[str(ndir / "hosts"), "/etc/hosts"], [str(ndir / "hostname"), "/etc/hostname"]]
    run_dirs = RUN_DIRS + (INFRA_RUN_DIRS if node.role == "infra" else [])
    return {
        "lab": plan.name,
        "name": node.name,
        "role": node.role,
        "address": node.address,
        "cluster": plan.cluster,
        "binds": binds,
        "tmpfs": TMPFS,
        "run_dirs": run_dirs,
        "sshd_config": str(ndir / "sshd_config"),
        "status_file": str(ndir / "status.json"),
        **({"secret": plan.secret} if node.role == "infra" else {}),
    }


def _mkdir(path: Path, user: str, group: str, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, user, group)
    os.chmod(path, mode)


def _write(path: Path, text: str | bytes, mode: int = 0o644, owner: tuple | None = None) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chmod(path, mode)
    if owner:
        shutil.chown(path, *owner)


def install_tls(plan: LabPlan, node: NodePlan, ca: lab_tls.Issued) -> None:
    """The node's certificate of the lab's CA (its name and address), where its servers
    read it: the cluster nodes' /etc/congress-ha/tls (node.pem, ca.pem, node.key 0640
    root:congress-ha, the service's group), the infra's RabbitMQ and PostgreSQL
    folders (keys owned by their server, 0600)."""
    issued = lab_tls.issue(ca, plan.tls_dir, node.name, [node.name], [node.address])
    root = plan.node_dir(node) / "root"
    if node.role == "cluster":
        targets = [(NODE_TLS_DIR, "node", ("root", SERVICE_USER))]
    else:
        targets = [(infra.RABBITMQ_TLS_DIR, "server", ("rabbitmq", "rabbitmq")),
                   (infra.PG_TLS_DIR, "server", ("postgres", "postgres"))]
    for folder, stem, owner in targets:
        where = root / folder.lstrip("/")
        _mkdir(where, owner[0], owner[1], 0o750)
        _write(where / "ca.pem", ca.cert.read_bytes(), 0o644, owner)
        _write(where / f"{stem}.pem", issued.cert.read_bytes(), 0o644, owner)
        _write(where / f"{stem}.key", issued.key.read_bytes(),
               0o600 if owner[1] == owner[0] else 0o640, owner)


def prepare(plan: LabPlan, node: NodePlan, authkey: bytes | None) -> None:
    """Create the node's folder: private directories, configs, host key, PID 1 config."""
    ndir = plan.node_dir(node)
    root = ndir / "root"
    for d, user, group, mode, _ in private_dirs(plan, node):
        _mkdir(root / d.lstrip("/"), user, group, mode)
        # The mount point must exist on the host; creating an empty directory is the
        # only trace a lab leaves outside its folder (documented in docs/lab.md).
        Path(d).mkdir(parents=True, exist_ok=True)
    subdirs = SUBDIRS if node.role == "cluster" else INFRA_SUBDIRS
    for rel, user, group, mode in subdirs:
        _mkdir(root / rel, user, group, mode)
    _write(ndir / "hosts", hosts_file(plan))
    _write(ndir / "hostname", node.name + "\n")
    _write(ndir / "sshd_config", sshd_config(plan, node))
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{node.name} host key",
         "-f", str(ndir / "ssh_host_ed25519_key")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    if node.role == "cluster":
        uidgid = Path("/etc/corosync/uidgid.d")
        _mkdir(root / "etc/corosync/uidgid.d", "root", "root", 0o755)
        if uidgid.is_dir():
            for f in uidgid.iterdir():
                shutil.copy2(f, root / "etc/corosync/uidgid.d" / f.name)
        if plan.cluster:
            boot = cluster.files(plan)
            _write(root / "etc/corosync/corosync.conf", boot["corosync.conf"])
            if authkey:
                _write(root / "etc/corosync/authkey", authkey, 0o400)
            _write(root / "var/lib/pacemaker/cib/cib.xml", boot["cib.xml"], 0o600,
                   ("hacluster", "haclient"))  # fmt: skip
    else:
        _write(root / "etc/rabbitmq/rabbitmq-env.conf", infra.rabbitmq_env(plan.name))
        # It holds the bus password: readable by RabbitMQ's group only.
        _write(root / "etc/rabbitmq/rabbitmq.conf",
               infra.rabbitmq_conf(node.address, plan.secret), 0o640, ("root", "rabbitmq"))
        _write(root / "etc/rabbitmq/enabled_plugins", "[].\n")
    write_json(ndir / "node.json", init_config(plan, node))


def boot_command(plan: LabPlan, node: NodePlan) -> list[str]:
    return [
        "ip", "netns", "exec", node.netns,
        "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc",
        "--propagation", "private",
        "--", sys.executable, "-m", "congress_ha.lab.init", str(plan.node_dir(node) / "node.json"),
    ]  # fmt: skip


def init_pid(plan: LabPlan, node: NodePlan) -> int | None:
    """Host PID of the node's PID 1, if the node is on."""
    rec = node_pids(plan, node.short).get("init")
    return rec.pid if rec and rec.alive() else None


def nsenter_command(pid: int, argv: list[str]) -> list[str]:
    # All of the node's namespaces: libqb needs both net (abstract sockets) and mount
    # (/dev/shm), hence not `ip netns exec` (FACTS.md).
    return ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--", *argv]


def run_in(plan: LabPlan, node: NodePlan, argv: list[str], timeout: float = 30,
           check: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    pid = init_pid(plan, node)
    if pid is None:
        raise RuntimeError(f"node {node.name} is off")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    return subprocess.run(nsenter_command(pid, argv), capture_output=True, text=True,
                          timeout=timeout, check=check, env=env)  # fmt: skip


def boot_status(plan: LabPlan, node: NodePlan) -> dict:
    return read_json(plan.node_dir(node) / "status.json", {}) or {}


def wait_ready(plan: LabPlan, node: NodePlan, boot_id: str, timeout: float) -> float:
    """Wait for the node's PID 1 to report `ready` for this boot; return the seconds."""
    t0 = time.monotonic()
    while True:
        st = boot_status(plan, node)
        if st.get("boot_id") == boot_id:
            if st.get("phase") == "ready":
                return time.monotonic() - t0
            if st.get("phase") == "failed":
                raise RuntimeError(f"node {node.name} failed to boot: {st.get('error')}\n"
                                   + console_tail(plan, node))  # fmt: skip
        pids = node_pids(plan, node.short)
        if "init" in pids and not pids["init"].alive():
            raise RuntimeError(f"node {node.name} died while booting\n" + console_tail(plan, node))
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(
                f"node {node.name} not ready after {timeout:.0f} s (phase "
                f"{st.get('phase', 'none')})\n" + console_tail(plan, node)
            )
        time.sleep(0.05)


def console_tail(plan: LabPlan, node: NodePlan, lines: int = 15) -> str:
    try:
        text = (plan.node_dir(node) / "console.log").read_text(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join("  | " + ln for ln in text.splitlines()[-lines:])


# What `status` shows of the processes in a node (comm name -> service).
SERVICES = {
    "sshd": "sshd",
    "corosync": "corosync",
    "pacemakerd": "pacemaker",
    "beam.smp": "rabbitmq",
    "postgres": "postgresql",
}


def services(pid: int) -> list[str]:
    """Services running in the PID namespace of host PID `pid`."""
    try:
        target = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != target:
                continue
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in SERVICES:
            found.add(SERVICES[comm])
    return sorted(found)


def record(plan: LabPlan, node: NodePlan, holder: int, init: int, boot_id: str) -> None:
    write_json(plan.node_dir(node) / "pid.json", {
        "holder": ProcRecord.of(holder).to_json(),
        "init": ProcRecord.of(init).to_json(),
        "boot_id": boot_id,
    })  # fmt: skip
