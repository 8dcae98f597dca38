"""Faults on a real Corosync/Pacemaker cluster running congress-ha (DESIGN.md 6, e2e).

Every test starts from a healthy 3-node cluster with the workload of
``Cluster.load_workload``: a ticker (20 ticks/s, each tick one ``log``
action) and pushed alarms (each row one ``alarm`` action), all executed
actions appended to one action log.  After a fault, the test brings the
cluster back and checks the log: every tick number from the test's start on
executed exactly once, every pushed alarm exactly once.

One module, one cluster: deploying is the expensive part.  Figures go to
stdout (``pytest -s``) and to the report's captured output.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.cluster import DSD, Cluster, check_alarms, check_ticks, gaps, wait_for

# Deploying (in the first test's setup) takes a few minutes: more than pytest.ini's 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def assert_no_lost_or_repeated(c: Cluster, since: float) -> dict:
    actions = c.actions()
    ticks = check_ticks(actions, since=since)
    alarms = check_alarms(actions, c.pushed)
    assert ticks["executed"] > 0, "no tick action executed during the test"
    assert not ticks["duplicated"], f"ticks executed twice: {ticks['duplicated'][:20]}"
    assert not ticks["lost"], f"ticks never executed: {ticks['lost'][:20]} " \
                              f"({len(ticks['lost'])} in all)"
    assert not alarms["missing"], f"pushed alarms never executed: {alarms['missing']}"
    assert not alarms["duplicated"], f"alarms executed twice: {alarms['duplicated']}"
    return ticks


def wait_alarm_executed(c: Cluster, row: str, timeout: float = 60) -> dict:
    return wait_for(lambda: next((a for a in c.actions()
                                  if a["action"] == "alarm" and a["args"] == [row]), None),
                    timeout, f"alarm {row} executed", interval=0.2)


def survivors(c: Cluster, victim: str) -> list[str]:
    return [n for n in c.nodes if n != victim]


# -- the DSD's node dies -----------------------------------------------------------------
def test_the_three_links_are_tls_with_the_lab_ca(healthy):
    """The deployed service speaks HTTPS only, and its bus connections and database
    sessions are TLS (the lab's inventory turns TLS on with the lab's own CA)."""
    c = healthy
    node = c.nodes[0]
    address = c.d.address(node)
    ca = "/etc/congress-ha/tls/ca.pem"
    for argv, expect in (
            # HTTPS verified with the lab's CA (and the node's address in its cert) ...
            (["curl", "-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
              f"https://{address}:1789/healthz"], "200"),
            # ... and nothing for plain HTTP on the same port.
            (["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
              f"http://{address}:1789/healthz"], "000")):
        r = c.d.run(node, argv, timeout=30)
        assert r.stdout.strip() == expect, (argv, r.stdout, r.stderr)
    status, body = c.api("GET", "/v1/ha/status", node=node)  # the helper's https path
    assert status == 200, body
    infra = getattr(getattr(c.d, "plan", None), "infra_node", None)
    if infra is None:
        pytest.skip("the bus and the database are not the lab's: checked in the lab only")
    r = c.d.run(infra.name, ["rabbitmqctl", "list_connections", "--quiet",
                             "--no-table-headers", "ssl", "port", "user", "vhost"],
                 timeout=60)
    rows = [line.split("\t") for line in r.stdout.splitlines() if line.strip()]
    assert rows, r.stdout + r.stderr
    assert all(row[0] == "true" and row[1] == "5671" for row in rows), rows
    # ... on the cluster's own vhost, whose user has rights there only.
    assert all(row[3] == "congress" for row in rows), rows
    r = c.d.run(infra.name, ["rabbitmqctl", "list_user_permissions", "--quiet",
                             "--no-table-headers", "congress"], timeout=60)
    assert [line.split("\t")[0] for line in r.stdout.splitlines() if line.strip()] == \
        ["congress"], r.stdout + r.stderr
    r = c.d.run(infra.name, ["psql", "-h", "/run/postgresql", "-U", "postgres", "-tAc",
                             "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a "
                             "USING (pid) WHERE a.usename = 'congress'"], timeout=60)
    sessions = r.stdout.split()
    assert sessions and set(sessions) == {"t"}, r.stdout + r.stderr


def test_killing_the_dsd_node_moves_the_dsd_and_loses_no_action(healthy):
    c = healthy
    tag = f"kill-dsd-{int(time.time())}"
    c.push_alarms([f"{tag}-before-1", f"{tag}-before-2"])
    wait_alarm_executed(c, f"{tag}-before-2")
    victim = c.dsd_node()
    assert victim, "no DSD placement"
    others = survivors(c, victim)

    t_kill = c.d.kill(victim)
    # Pushed while the DSD is down or moving: the API answers 503 until the new
    # DSD is there; push_alarms retries, and the row must run once, on it.
    c.push_alarms([f"{tag}-during"], nodes=others)
    p = wait_for(lambda: (p := c.placement(avoid=(victim,))) and p.quorum and p.dsd
                 and p.dsd[0] != victim and p, 60, "the DSD started on a survivor")
    assert len(p.dsd) == 1 and p.dsd[0] in others
    first = c.wait_actions_after(t_kill, 60, "an action executed by the new DSD")
    wait_alarm_executed(c, f"{tag}-during")
    print(f"\nDSD {victim} -> {p.dsd[0]}: first action {first['executed_at'] - t_kill:.2f} s "
          "after the kill")

    c.restore()
    c.push_alarms([f"{tag}-after"])
    wait_alarm_executed(c, f"{tag}-after")
    assert_no_lost_or_repeated(c, since=c.test_started)


# -- an api-pe node dies ---------------------------------------------------------------
@pytest.mark.parametrize("which", ["leader", "other"])
def test_killing_an_api_pe_node_keeps_the_other_instances_and_the_queries(healthy, which):
    """``leader``: the node of the DSD's action leader (the DSD may be there too);
    ``other``: a node that runs neither the leader nor the DSD."""
    c = healthy
    leader = wait_for(c.leader, 30, "an action leader")
    leader_node = leader.split(":")[0]
    dsd = c.dsd_node()
    if which == "leader":
        victim = leader_node
    else:
        spare = [n for n in c.nodes if n not in (leader_node, dsd)]
        if not spare:
            pytest.skip(f"leader and DSD take two of {len(c.nodes)} nodes: none spare")
        victim = spare[0]
    others = survivors(c, victim)
    pids = {n: c.pe_pid(n) for n in others}
    assert all(pids.values()), f"api-pe server PIDs not found: {pids}"
    fenced = c.fence_count(victim)

    t_kill = c.d.kill(victim)
    failed: list[tuple[str, int, object]] = []
    answered = 0
    deadline = time.monotonic() + 60
    new_leader = None
    # Queries must keep answering on the survivors through the whole failover.
    while time.monotonic() < deadline:
        for n in others:
            status, body = c.api("GET", "/v1/policies/e2e/tables", node=n, timeout=5)
            if status == 200:
                answered += 1
            else:
                failed.append((n, status, body))
        new_leader = c.leader(via=others)
        if which == "other" or (new_leader and new_leader.split(":")[0] in others):
            p = c.placement(avoid=(victim,))
            if p and p.quorum and len(p.dsd) == 1 and p.dsd[0] != victim \
                    and c.executed_after(t_kill):
                break
    else:
        raise AssertionError(f"no recovery within 60 s: leader {new_leader}")
    assert not failed, f"queries failed on survivors during the failover: {failed[:5]}"
    assert answered > 0
    if which == "leader":
        assert new_leader != leader and new_leader.split(":")[0] in others
    else:
        assert new_leader == leader, f"leader changed from {leader} to {new_leader} " \
                                     "although its node lives"
    # Let the cluster finish with the victim (lost, fenced) before judging.
    c.wait_dealt_with(victim, fenced)
    # The clone is anonymous and interleaved: nothing else may have restarted.
    wait_for(lambda: c.ready_pes(others) == set(others), 30,
             "the surviving api-pe instances ready")
    after = {n: c.pe_pid(n) for n in others}
    assert after == pids, f"surviving api-pe servers restarted: {pids} -> {after}"
    first = c.executed_after(t_kill)
    print(f"\nkilled {victim} ({which}); leader {leader} -> {new_leader}; "
          f"first action {min(a['executed_at'] for a in first) - t_kill:.2f} s after; "
          f"{answered} queries answered, 0 failed")

    c.restore()
    assert_no_lost_or_repeated(c, since=c.test_started)


# -- a node is cut off -------------------------------------------------------------------
def test_partitioned_node_stops_its_resources_and_rejoins_after_heal(healthy):
    c = healthy
    victim = c.dsd_node()  # the node whose loss matters most
    others = survivors(c, victim)
    tag = f"partition-{int(time.time())}"

    t_cut = c.d.partition(victim)
    # The majority keeps quorum and runs the DSD; actions go on.
    p = wait_for(lambda: (p := c.placement(avoid=(victim,))) and p.quorum and p.dsd
                 and p.dsd[0] != victim and p, 60, "the majority running the DSD")
    first = c.wait_actions_after(t_cut, 60, "actions executed by the majority")
    c.push_alarms([f"{tag}-during"], nodes=others)
    wait_alarm_executed(c, f"{tag}-during")

    # The minority stops its resources (no-quorum-policy=stop), or is fenced
    # (reboot) by the majority first: either way nothing of ours runs there.
    def minority_quiet():
        if not c.d.powered(victim):
            return "powered off (fenced)"
        m = c.placement(via=victim)
        procs = c.server_processes(victim)
        if not procs and (m is None or not m.quorum):
            return "no quorum, resources stopped" if m is not None else "rebooted (fenced)"
        return None

    how = wait_for(minority_quiet, 60, f"no congress-ha process left on {victim}")
    print(f"\npartitioned {victim}: DSD -> {p.dsd[0]}; minority: {how}; first action "
          f"{first['executed_at'] - t_cut:.2f} s after the cut")

    c.d.heal(victim)
    c.d.start(victim)  # a no-op unless the fence reboot left it without its stack
    wait_for(lambda: (q := c.placement()) and victim in q.online and victim in q.clone,
             120, f"{victim} back online with its api-pe instance")
    c.wait_healthy()
    assert len(c.placement().dsd) == 1
    assert_no_lost_or_repeated(c, since=c.test_started)


# -- maintenance: standby and move ---------------------------------------------------------
STANDBY = {
    "crm": (["crm", "node", "standby"], ["crm", "node", "online"]),
    "pcs": (["pcs", "node", "standby"], ["pcs", "node", "unstandby"]),
}
MOVE = {
    "crm": (["crm", "resource", "move", DSD], ["crm", "resource", "clear", DSD]),
    "pcs": (["pcs", "resource", "move", DSD], ["pcs", "resource", "clear", DSD]),
}


def _run_ok(c: Cluster, node: str, argv: list[str]) -> None:
    r = c.crm(node, *argv, timeout=120)
    assert r.returncode == 0, f"{' '.join(argv)} on {node}: rc {r.returncode}\n" \
                              f"{r.stdout}{r.stderr}"


def _handover(c: Cluster, t0: float, source: str) -> tuple[str, float]:
    p = wait_for(lambda: (p := c.placement()) and len(p.dsd) == 1 and p.dsd[0] != source
                 and p, 60, f"the DSD off {source}")
    c.wait_actions_after(time.time(), 30, "actions after the handover")
    pauses = gaps(c.actions(), t0 - 1, time.time())
    return p.dsd[0], max((b - a for a, b in pauses), default=0.0)


@pytest.mark.parametrize("shell", ["crm", "pcs"])
def test_standby_of_the_dsd_node_hands_over_without_losing_actions(healthy, shell):
    c = healthy
    victim = c.dsd_node()
    admin = survivors(c, victim)[0]
    on, off = STANDBY[shell]
    c.push_alarms([f"standby-{shell}-{int(time.time())}"])
    t0 = time.time()
    _run_ok(c, admin, on + [victim])
    target, pause = _handover(c, t0, victim)
    wait_for(lambda: victim not in c.placement().clone, 60,
             f"the api-pe instance of {victim} stopped")
    wait_for(lambda: not c.server_processes(victim), 30,
             f"no congress-ha process left on standby node {victim}")
    print(f"\n{shell} standby {victim}: DSD -> {target}, longest pause {pause:.2f} s")
    _run_ok(c, admin, off + [victim])
    c.wait_healthy()
    assert_no_lost_or_repeated(c, since=c.test_started)


@pytest.mark.parametrize("shell", ["crm", "pcs"])
def test_moving_the_dsd_hands_over_without_losing_actions(healthy, shell):
    c = healthy
    source = c.dsd_node()
    target = survivors(c, source)[-1]
    move, clear = MOVE[shell]
    c.push_alarms([f"move-{shell}-{int(time.time())}"])
    t0 = time.time()
    _run_ok(c, source, move + [target])
    where, pause = _handover(c, t0, source)
    assert where == target
    _run_ok(c, source, clear)
    # With stickiness above the preferred score (the default) it stays there.
    c.wait_healthy()
    print(f"\n{shell} move {source} -> {where}: longest pause {pause:.2f} s")
    assert_no_lost_or_repeated(c, since=c.test_started)


SERVICE_USER = "congress-ha"  # the agents' default user, made by the playbook


def test_the_servers_run_as_the_agents_user(healthy):
    """Issue 13, item 2: under the agents each server runs as the resource's user
    parameter, the service's own user wherever it can run the deployed venv (the
    lab's inventory falls back to root only where it cannot); it reads its config
    and secrets through its group (the cluster is healthy)."""
    c = healthy
    import xml.etree.ElementTree as ET

    cib = ET.fromstring(c.crm(c.nodes[0], "cibadmin", "-Q").stdout)
    users = {p.get("id"): nv.get("value") for p in cib.iter("primitive")
             if p.get("id") in ("congress-api-pe", "congress-datasources")
             for nv in p.iter("nvpair") if nv.get("name") == "user"}
    assert len(users) == 2 and len(set(users.values())) == 1, \
        f"the two congress primitives' user parameters: {users}"
    user = next(iter(users.values()))
    for node in c.nodes:
        # user:32, not user: ps cuts a name longer than 8 characters ("congres+").
        r = c.d.run(node, ["ps", "-o", "user:32=", "-p", str(c.pe_pid(node))])
        assert r.stdout.split() == [user], f"{node}: {r.stdout}{r.stderr}"
    dsd = c.dsd_node()
    r = c.d.run(dsd, ["pgrep", "-u", user, "-f", "[c]ongress-ha-server.*--datasources"])
    assert r.stdout.strip(), f"no DSD of user {user} on {dsd}"
    print(f"\nthe servers run as {user}")


# Where a node may keep a secret: only these files, and only root may read them.
SECRET_FILES = {"/etc/congress-ha/congress-ha.conf", "/etc/congress-ha/api-token",
                "/etc/congress-ha/bus.key"}
FENCE_SECRET_DIR = "/etc/congress-ha/fence"  # fence-NODE.password, one per device


def secret_files(c: Cluster) -> set[str]:
    return SECRET_FILES | {f"{FENCE_SECRET_DIR}/fence-{n}.password" for n in c.nodes}
SCANNED = ["/etc/congress-ha", "/var/log", "/var/lib/congress-ha", "/var/lib/pacemaker",
           "/run/congress-ha"]


def node_secrets(c: Cluster, node: str) -> set[str]:
    """The passwords, the token and the bus key a deployed node holds."""
    import configparser
    from urllib.parse import urlsplit

    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(c.d.run(node, ["cat", "/etc/congress-ha/congress-ha.conf"]).stdout)
    found = set()
    for url in (parser["DEFAULT"]["transport_url"], parser["database"]["connection"]):
        for part in urlsplit(url).netloc.split(","):
            if "@" in part and ":" in part.split("@")[0]:
                found.add(part.split("@")[0].split(":", 1)[1])
    fence = [f"{FENCE_SECRET_DIR}/fence-{n}.password" for n in c.nodes]
    for path in ("/etc/congress-ha/api-token", "/etc/congress-ha/bus.key", *fence):
        found |= {line.strip() for line in c.d.run(node, ["cat", path]).stdout.splitlines()
                  if line.strip() and not line.startswith("#")}
    return {s for s in found if len(s) >= 8}


def test_no_secret_in_ps_logs_the_cib_or_a_readable_file(healthy):
    """Issue 13's check on the deployed cluster, after faults have run: the bus and
    database passwords, the API token, the bus key and the fence password appear in
    no process's command line, no log, not in the CIB, and in no file but their own
    0600 ones."""
    c = healthy
    secrets = set()
    for node in c.nodes:
        secrets |= node_secrets(c, node)
    assert len(secrets) >= 4, "expected a bus and database password, a token, a key " \
                              "and a fence password"
    cib = c.crm(c.nodes[0], "cibadmin", "-Q").stdout
    assert "<cib" in cib
    assert not [s for s in secrets if s in cib], "a secret is in the CIB"
    # In the lab (whose inventory gives every fence device a password): each
    # device reads it from its file, and every request of the fence agent
    # (the devices' monitors, the fencing that earlier tests caused) carried
    # it; the lab's power switch refuses a wrong one.
    requests = c.d.fence_requests()
    if requests is not None:
        for node in c.nodes:
            assert f'value="/bin/cat {FENCE_SECRET_DIR}/fence-{node}.password"' in cib, \
                f"fence-{node} has no password_script in the CIB"
        assert requests, "the fence agent never ran: its password was never used"
        assert all(r["password"] for r in requests), \
            f"fence requests without the password: {[r for r in requests if not r['password']]}"
    files = secret_files(c) if requests is not None else SECRET_FILES
    for node in c.nodes:
        ps = c.d.run(node, ["ps", "-eo", "args"]).stdout
        assert len(ps.splitlines()) > 3
        assert not [s for s in secrets if s in ps], f"a secret is on a command line on {node}"
        # grep reads the secrets from stdin: they never go on its own command line.
        hits = c.d.run(node, ["sh", "-c", 'grep -rlsF -f /dev/stdin "$@" || true', "grep",
                              *SCANNED], input="\n".join(sorted(secrets)) + "\n",
                       timeout=120).stdout.split()
        assert set(hits) <= files, f"secrets in {sorted(set(hits) - files)} on {node}"
        modes = c.d.run(node, ["stat", "-c", "%n %a %U %G", *sorted(files)]).stdout
        assert len(modes.splitlines()) == len(files), f"{node}: a secret file is missing"
        for line in modes.splitlines():
            path, mode, owner, group = line.split()
            # root's; the service's group may read what the service reads, never others.
            assert int(mode, 8) & 0o037 == 0 and owner == "root", f"{node}: {line}"
            assert group in ("root", SERVICE_USER), f"{node}: {line}"
            if path.startswith(FENCE_SECRET_DIR):  # only the fence agent (root) reads it
                assert int(mode, 8) & 0o077 == 0, f"{node}: {line}"
