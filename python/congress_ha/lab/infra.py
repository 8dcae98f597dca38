"""The infra node's services: a private RabbitMQ broker and a PostgreSQL server.

The rendering functions run on the host at `up`; `start_rabbitmq` / `start_postgres`
run inside the infra node (called by its PID 1, see init.py), where /etc/rabbitmq,
/var/lib/rabbitmq, /var/lib/postgresql and /var/log are private bind mounts, so the
packages' default paths are already the lab's own. Standard library only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

from .plan import AMQP_PORT, AMQPS_PORT, LAB_USER, LAB_VHOST, NETWORK, PG_PORT

PG_BIN = "/usr/lib/postgresql/15/bin"
PGDATA = "/var/lib/postgresql/lab"
PG_SOCKET_DIR = "/run/postgresql"
# Certificates of the lab's CA, in the infra node's private folders (node.py
# installs them at `up`), owned by the server that reads them.
RABBITMQ_TLS_DIR = "/etc/rabbitmq/tls"
PG_TLS_DIR = "/var/lib/postgresql/tls"


def rabbitmq_env(lab: str) -> str:
    # A private node name per lab; epmd and the distribution port stay on loopback.
    return f"NODENAME={lab}@localhost\nUSE_LONGNAME=false\n"


def rabbitmq_conf(address: str, password: str) -> str:
    return (
        f"listeners.tcp.1 = {address}:{AMQP_PORT}\n"
        f"listeners.tcp.2 = 127.0.0.1:{AMQP_PORT}\n"
        "distribution.listener.interface = 127.0.0.1\n"
        # guest may only log in from loopback: the cluster gets its own user instead,
        # created on the broker's first boot.
        f"default_user = {LAB_USER}\n"
        f"default_pass = {password}\n"
        # The cluster's own vhost: its user has no rights on any other.
        f"default_vhost = {LAB_VHOST}\n"
        "default_user_tags.administrator = true\n"
        "default_permissions.configure = .*\n"
        "default_permissions.read = .*\n"
        "default_permissions.write = .*\n"
        "log.file.level = info\n"
        # TLS beside the plain listener; clients verify the server, it asks for
        # no client certificate (they log in with the password).
        f"listeners.ssl.1 = {address}:{AMQPS_PORT}\n"
        f"listeners.ssl.2 = 127.0.0.1:{AMQPS_PORT}\n"
        f"ssl_options.cacertfile = {RABBITMQ_TLS_DIR}/ca.pem\n"
        f"ssl_options.certfile = {RABBITMQ_TLS_DIR}/server.pem\n"
        f"ssl_options.keyfile = {RABBITMQ_TLS_DIR}/server.key\n"
        "ssl_options.versions.1 = tlsv1.3\n"
        "ssl_options.versions.2 = tlsv1.2\n"
        "ssl_options.verify = verify_none\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
    )


def pg_hba() -> str:
    return (
        "local all all trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        f"host all all {NETWORK} scram-sha-256\n"
    )


def _as_user(user: str) -> dict:
    import pwd

    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def start_rabbitmq(spawn, log) -> int:
    """Start the broker as user rabbitmq; return its pid (readiness: wait_port)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/var/lib/rabbitmq",
        "LANG": "C.UTF-8",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    return spawn(
        "rabbitmq",
        ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        env=env,
        cwd="/var/lib/rabbitmq",
        log="/var/log/rabbitmq/console.log",
        **_as_user("rabbitmq"),
    )


def start_postgres(spawn, log, address: str, password: str) -> int:
    """initdb on first boot, start postgres, create the congress role and database."""
    env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/var/lib/postgresql"}
    user = _as_user("postgres")
    fresh = not os.path.exists(os.path.join(PGDATA, "PG_VERSION"))
    if fresh:
        t = time.monotonic()
        subprocess.run(
            [f"{PG_BIN}/initdb", "-D", PGDATA, "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "-N"],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **user,
        )  # fmt: skip
        with open(os.path.join(PGDATA, "pg_hba.conf"), "w") as f:
            f.write(pg_hba())
        log(f"initdb {PGDATA} {time.monotonic() - t:.1f}s")
    pid = spawn(
        "postgres",
        [f"{PG_BIN}/postgres", "-D", PGDATA,
         "-c", f"listen_addresses={address},127.0.0.1", "-c", f"port={PG_PORT}",
         "-c", f"unix_socket_directories={PG_SOCKET_DIR}",
         "-c", "ssl=on", "-c", f"ssl_cert_file={PG_TLS_DIR}/server.pem",
         "-c", f"ssl_key_file={PG_TLS_DIR}/server.key"],
        env=env, cwd="/var/lib/postgresql", log="/var/log/postgresql/postgres.log", **user,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run(
            [f"{PG_BIN}/pg_isready", "-q", "-h", PG_SOCKET_DIR, "-p", str(PG_PORT)],
            env=env, check=False,
        )
        if r.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("postgres did not accept connections within 30 s")
        time.sleep(0.1)
    if fresh:
        sql = (
            f"CREATE ROLE {LAB_USER} LOGIN PASSWORD '{password}';\n"
            f"CREATE DATABASE {LAB_USER} OWNER {LAB_USER};\n"
        )
        subprocess.run(
            [f"{PG_BIN}/psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_SOCKET_DIR,
             "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres"],
            input=sql.encode(), env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return pid


def wait_port(address: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                msg = f"nothing listens on {address}:{port} after {timeout:.0f} s"
                raise RuntimeError(msg) from None
            time.sleep(0.1)
