"""The deployed service as the e2e tests see it, on any driver.

Placement comes from ``crm_mon --output-as=xml`` run on a live node; the
service's own view from its REST API (``/v1/ha/status``) called with curl
on a node (the host may have no route to the cluster); executed actions
from the ``file`` datasource's action log.  Waits poll with deadlines.
"""

from __future__ import annotations

import json
import shlex
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.e2e.lab import Driver, DriverError

DSD = "congress-datasources"
CLONE = "congress-api-pe-clone"
API_PORT = 1789
TOKEN_FILE = "/etc/congress-ha/api-token"  # written by the congress_ha role
SERVICE_CONF = "/etc/congress-ha/congress-ha.conf"
# curl on a node: $1 is host:port/path; https with the node's CA when its
# service config has [api] tls_ca_file (rendered from cluster.yaml tls).
API_CURL = (
    f'where=$1; shift; ca=$(sed -n "s/^tls_ca_file = //p" {SERVICE_CONF} 2>/dev/null); '
    'if [ -n "$ca" ]; then set -- "$@" --cacert "$ca" "https://$where"; '
    'else set -- "$@" "http://$where"; fi; '
    f'exec curl "$@" -H "X-Auth-Token: $(cat {TOKEN_FILE})"')

TICK_RATE = 20  # ticks per second
# The ticker keeps this many ticks in its table.  It must cover the longest
# outage of the DSD in a test (20 s here): a new DSD publishes the last
# WINDOW ticks, so ticks made while no DSD ran are derived late, not never,
# and "none lost" can be checked as "every tick number between the first
# and the last was executed once".
TICK_WINDOW = 400


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(interval)


@dataclass
class Placement:
    """One reading of crm_mon from one node."""

    via: str
    quorum: bool
    online: set[str] = field(default_factory=set)
    standby: set[str] = field(default_factory=set)
    dsd: list[str] = field(default_factory=list)  # nodes where the DSD is started
    clone: set[str] = field(default_factory=set)  # nodes with an api-pe instance started
    extra: dict[str, list[str]] = field(default_factory=dict)  # other primitives
    failures: list[dict] = field(default_factory=list)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_crm_mon(xml: str, via: str) -> Placement | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    dc = root.find("summary/current_dc")
    p = Placement(via=via, quorum=dc is not None and dc.get("with_quorum") == "true")
    for n in root.findall("nodes/node"):
        if n.get("online") == "true":
            p.online.add(n.get("name"))
        if n.get("standby") == "true":
            p.standby.add(n.get("name"))
    for r in root.iter("resource"):
        if r.get("role") != "Started" or r.get("active") != "true":
            continue
        where = [x.get("name") for x in r.findall("node")]
        if r.get("id") == DSD:
            p.dsd += where
        elif r.get("id") == "congress-api-pe":
            p.clone.update(where)
        else:
            p.extra.setdefault(r.get("id"), []).extend(where)
    p.failures = [dict(f.attrib) for f in root.findall("failures/failure")]
    for n in root.findall("node_attributes/node"):
        p.attributes[n.get("name")] = {a.get("name"): a.get("value")
                                       for a in n.findall("attribute")}
    return p


class Cluster:
    """congress-ha on a cluster reached through a driver."""

    def __init__(self, driver: Driver) -> None:
        self.d = driver
        self.nodes = list(driver.nodes)
        self.action_log = driver.shared_path("actions.jsonl")
        self.pushed: list[str] = []  # every alarm row pushed so far, in order

    # -- Pacemaker ------------------------------------------------------------------
    def crm(self, node: str, *argv: str, timeout: float = 60):
        return self.d.run(node, list(argv), timeout=timeout)

    def placement(self, via: str | None = None, avoid: tuple[str, ...] = ()) -> Placement | None:
        """crm_mon from ``via``, or from the first node that answers with quorum."""
        for node in [via] if via else [n for n in self.nodes if n not in avoid]:
            r = self.d.run(node, ["crm_mon", "-1", "--output-as=xml"], timeout=15)
            if r.returncode == 0:
                p = parse_crm_mon(r.stdout, node)
                if p is not None and (via or p.quorum):
                    return p
        return None

    def fence_count(self, node: str, via: str | None = None) -> int | None:
        """Successful fencings of ``node`` in the cluster's history (None: no answer).

        ``--verbose``: without it stonith_admin lists only the latest fencing of
        each node, so a node fenced a second time would never be counted."""
        for v in [via] if via else [n for n in self.nodes if n != node]:
            r = self.d.run(v, ["stonith_admin", "--history", node, "--verbose",
                               "--output-as=xml"],
                           timeout=15)
            try:
                root = ET.fromstring(r.stdout)
            except ET.ParseError:
                continue
            return sum(1 for e in root.iter("fence_event") if e.get("status") == "success")
        return None

    def wait_dealt_with(self, node: str, fenced_before: int | None, timeout: float = 60,
                        ) -> None:
        """Wait until the survivors have noticed that ``node`` died: seen offline, or
        fenced (a fenced lab node reboots and may be back before we look)."""
        def done():
            p = self.placement(avoid=(node,))
            if p is not None and p.quorum and node not in p.online:
                return True
            n = self.fence_count(node)
            return n is not None and fenced_before is not None and n > fenced_before
        wait_for(done, timeout, f"the survivors done with {node} (offline or fenced)")

    def dsd_node(self, avoid: tuple[str, ...] = ()) -> str | None:
        p = self.placement(avoid=avoid)
        return p.dsd[0] if p and len(p.dsd) == 1 else None

    def healthy_placement(self, nodes: list[str] | None = None) -> Placement | None:
        """The placement, if every node in ``nodes`` is online, runs a clone instance,
        and exactly one DSD runs."""
        want = set(nodes or self.nodes)
        p = self.placement()
        if (p and p.quorum and want <= p.online and want <= p.clone and len(p.dsd) == 1
                and not (p.standby & want)):
            return p
        return None

    # -- the REST API ---------------------------------------------------------------
    def api(self, method: str, path: str, body=None, node: str | None = None,
            timeout: float = 10) -> tuple[int, object]:
        """One request to the API of ``node`` (default: the first node), via curl there,
        with the node's API token (a deployed cluster is never noauth); over HTTPS,
        verified with the node's [api] tls_ca_file, when its config turns TLS on."""
        node = node or self.nodes[0]
        where = f"{self.d.address(node)}:{API_PORT}{path}"
        argv = ["sh", "-c", API_CURL, "curl", where,
                "-sS", "-X", method, "--max-time", str(timeout), "-o", "-",
                "-w", "\n%{http_code}", "-H", "Content-Type: application/json"]
        if body is not None:
            argv += ["--data-binary", "@-"]
        r = self.d.run(node, argv, timeout=timeout + 20,
                       input=None if body is None else json.dumps(body))
        text, _, code = r.stdout.rpartition("\n")
        try:
            status = int(code)
        except ValueError:
            return 0, (r.stderr or r.stdout).strip()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def ha_status(self, node: str) -> dict | None:
        # Short: a node that just died must not hold up whoever polls the leader.
        status, body = self.api("GET", "/v1/ha/status", node=node, timeout=2)
        return body if status == 200 and isinstance(body, dict) else None

    def leader(self, via: list[str] | None = None) -> str | None:
        """The DSD's action leader (``NODE:api-pe``), as the DSD's heartbeat says."""
        for node in via or self.nodes:
            st = self.ha_status(node)
            if not st:
                continue
            for peer in st.get("peers", []):
                if "datasources" in peer.get("roles", []) and peer.get("leader"):
                    return peer["leader"]
        return None

    def ready_pes(self, nodes: list[str] | None = None) -> set[str]:
        """Nodes whose api-pe says it is ready (policy and every datasource synced)."""
        out = set()
        for node in nodes or self.nodes:
            st = self.ha_status(node)
            if st and st.get("ready"):
                out.add(node)
        return out

    def pe_pid(self, node: str) -> int | None:
        """PID of the api-pe server on ``node`` (in the node's PID namespace in a lab)."""
        # "[c]" keeps pgrep from matching a wrapper (sudo, sh -c) that carries the pattern.
        r = self.d.run(node, ["pgrep", "-f", "[c]ongress-ha-server .*--policy-engine"])
        pids = [int(x) for x in r.stdout.split()]
        return pids[0] if len(pids) == 1 else None

    def server_processes(self, node: str) -> list[str]:
        r = self.d.run(node, ["pgrep", "-a", "-f", "[c]ongress-ha-server"], timeout=10)
        return [line for line in r.stdout.splitlines() if line.strip()]

    # -- the workload ---------------------------------------------------------------
    def load_workload(self, node: str | None = None) -> None:
        """A ticker, a push table and a file datasource, and one policy joining them.

        Idempotent: what exists already is kept (the suite may run against a
        cluster that an earlier run set up).
        """
        _, existing = self.api("GET", "/v1/data-sources", node=node)
        have = {d["name"] for d in (existing or {}).get("results", [])}
        sources = [
            ("ticks", "ticker", {"rate": TICK_RATE, "window": TICK_WINDOW}),
            ("inbox", "push", {"tables": {"alarm": ["x"]}}),
            ("out", "file", {"action_log": self.action_log}),
        ]
        for name, driver, config in sources:
            if name in have:
                continue
            status, body = self.api("POST", "/v1/data-sources",
                                    {"name": name, "driver": driver, "config": config},
                                    node=node)
            assert status == 201, f"creating datasource {name}: {status} {body}"
        _, policies = self.api("GET", "/v1/policies", node=node)
        if "e2e" not in {p["name"] for p in (policies or {}).get("results", [])}:
            status, body = self.api("POST", "/v1/policies", {
                "name": "e2e", "description": "ticks and alarms to logged actions",
                "rules": [{"rule": "execute[out:log(n)] :- ticks:tick(n)", "name": "ticks"},
                          {"rule": "execute[out:alarm(x)] :- inbox:alarm(x)",
                           "name": "alarms"}]}, node=node)
            assert status == 201, f"creating policy e2e: {status} {body}"

    def push_alarms(self, rows: list[str], nodes: list[str] | None = None,
                    timeout: float = 60) -> str:
        """Add ``rows`` to the pushed alarms (the table is replaced by all of them).

        Retries through the DSD's outage (the API answers 503 while no DSD
        answers); returns the node whose API accepted it.
        """
        self.pushed += [r for r in rows if r not in self.pushed]
        body = [[x] for x in self.pushed]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for node in nodes or self.nodes:
                status, answer = self.api("PUT", "/v1/data-sources/inbox/tables/alarm/rows",
                                          body, node=node, timeout=5)
                if status == 200:
                    return node
                last = (node, status, answer)
            time.sleep(0.3)
        raise AssertionError(f"push of {rows} not accepted within {timeout} s: {last}")

    def actions(self) -> list[dict]:
        out = []
        for line in self.d.read_text(self.action_log).splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by a power off in the middle of a write
        return out

    def executed_after(self, t: float) -> list[dict]:
        return [a for a in self.actions() if a["executed_at"] > t]

    def wait_actions_after(self, t: float, timeout: float, what: str) -> dict:
        """The first action executed after wall-clock ``t``."""
        found = wait_for(lambda: sorted(self.executed_after(t),
                                        key=lambda a: a["executed_at"]),
                         timeout, what, interval=0.1)
        return found[0]

    def wait_healthy(self, timeout: float = 120, flowing: bool = True) -> Placement:
        """Every node online with its api-pe, one DSD, every PE ready, actions flowing."""
        p = wait_for(self.healthy_placement, timeout, "every node online with api-pe "
                     "started and one DSD", interval=0.5)
        wait_for(lambda: self.ready_pes() == set(self.nodes), timeout,
                 "every api-pe ready", interval=0.5)
        if flowing:
            t = time.time()
            self.wait_actions_after(t, 30, "actions flowing")
        return p

    def restore(self, timeout: float = 180) -> None:
        """Undo every fault a test may leave: links up, nodes on with their cluster stack,
        no standby, no move constraint, no failure record; then wait until healthy.

        Repeated until healthy: the cluster may fence (reboot) a node that was
        killed or cut off after we brought it back, and it then needs its stack
        started again.
        """
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                try:
                    self.d.heal(node)
                    self.d.start(node)
                except DriverError as exc:  # e.g. fenced while we started it: again
                    if time.monotonic() >= deadline:
                        raise
                    print(f"restore: {exc}")
            p = self.placement()
            if p is not None:
                for node in p.standby:
                    self.crm(p.via, "crm_attribute", "--node", node, "--name", "standby",
                          "--delete")
                self.crm(p.via, "crm_resource", "--clear", "--resource", DSD)
                if p.failures:
                    self.crm(p.via, "crm_resource", "--cleanup")
            try:
                self.wait_healthy(timeout=min(30, max(1, deadline - time.monotonic())))
                return
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise


# -- checking the action log ---------------------------------------------------------
def tick_numbers(actions: list[dict]) -> list[int]:
    return [int(a["args"][0]) for a in actions if a["action"] == "log"]


def check_ticks(actions: list[dict], since: float | None = None) -> dict:
    """Tick actions: duplicates, and numbers missing between the first and the last.

    ``since`` limits the check to ticks made after that wall-clock time (the
    numbers are ``time * rate``), e.g. the start of one test.
    """
    nums = tick_numbers(actions)
    if since is not None:
        floor = int(since * TICK_RATE)
        nums = [n for n in nums if n >= floor]
    counts = Counter(nums)
    dups = sorted(n for n, c in counts.items() if c > 1)
    lost: list[int] = []
    if nums:
        lost = sorted(set(range(min(nums), max(nums) + 1)) - set(counts))
    return {"executed": len(nums), "distinct": len(counts), "duplicated": dups,
            "lost": lost, "first": min(nums) if nums else None,
            "last": max(nums) if nums else None}


def check_alarms(actions: list[dict], pushed: list[str]) -> dict:
    counts = Counter(str(a["args"][0]) for a in actions if a["action"] == "alarm")
    return {"missing": [x for x in pushed if counts[x] == 0],
            "duplicated": sorted(x for x, c in counts.items() if c > 1),
            "unexpected": sorted(x for x in counts if x not in pushed)}


def gaps(actions: list[dict], start: float, end: float) -> list[tuple[float, float]]:
    """Pauses in execution longer than 0.5 s between ``start`` and ``end`` (wall clock)."""
    times = sorted(a["executed_at"] for a in actions if start <= a["executed_at"] <= end)
    return [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a > 0.5]


def quote(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
