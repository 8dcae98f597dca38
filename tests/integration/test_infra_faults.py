"""Nothing accepted is lost or run twice when the broker or the database fails
(issue 14), on real processes: 2 api-pe nodes and a DSD over a private RabbitMQ and
a private PostgreSQL, actions counted in the file driver's action log.

"Accepted" is a push answered 2xx, or a row the DSD published (a tick, a line of
a polled file): each must run exactly once, whenever the broker, the database or
the DSD comes back. Three kinds of source run at once, each keeping a window
longer than the whole test (300 s): the ticker (2 ticks a second, the last
600), a pusher (one push every 0.2 s through the API, each the last 1500
values "p<k>") and a polled file (a value "f<k>" added every 0.5 s, the last
600 kept; the file driver reads it every 0.5 s). Every value v runs the
action log(v).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_failover import leader_of
from tests.support.http import request
from tests.support.postgres import Postgres
from tests.support.procs import Cluster, wait_for

pytestmark = pytest.mark.integration
MARK = "marker"        # the marker rule's action: log("marker")
# Each source keeps 300 s of values: longer than a whole test's faults, during
# which a loaded machine kept the PEs out of sync for over 60 s (a CI run).
RATE, WINDOW = 2, 600  # the ticker
PUSH_EVERY, PUSH_WINDOW = 0.2, 1500
FEED_EVERY, FEED_WINDOW = 0.5, 600


@pytest.fixture(scope="module")
def pg():
    db = Postgres(prefix="chif")
    try:
        db.start()
        yield db
    finally:
        db.cleanup()


def workload(base: Path, transport_url: str, db_url: str) -> Cluster:
    """A cluster's database seeded with the three sources and the file action log."""
    from congress_ha.store.datasources import add_datasource
    from congress_ha.store.db import open_engine, session_factory

    c = Cluster(base, transport_url, db_url=db_url)
    c.seed_datasources(rate=RATE, window=WINDOW)
    sessions = session_factory(open_engine(db_url))
    add_datasource(sessions, "inbox", "push", {"tables": {"alarm": ["n"]}})
    Feeder.write(base / "feed.json", ["f0"])
    add_datasource(sessions, "feed", "file", {"path": str(base / "feed.json"),
                                              "action_log": str(base / "feed-log.jsonl"),
                                              "poll_interval": 0.5})
    return c


@pytest.fixture
def cluster(broker, pg, request):
    base = Path(tempfile.mkdtemp(prefix="chit-infra-"))
    c = workload(base, broker.url, pg.create_database("c" + uuid.uuid4().hex[:12]))
    yield c
    c.stop_all()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(f"logs and action log kept in {base}")
        for proc in c.procs.values():
            print(f"==== {proc.name} log ====\n{proc.logtext()[-4000:]}")
    else:
        shutil.rmtree(base, ignore_errors=True)


def start(cluster, pes=2):
    dsd = cluster.add_dsd("dsd1").start()
    nodes = [cluster.add_pe(f"pe{i}").start() for i in range(1, pes + 1)]
    wait_for(lambda: all(p.healthy("api-pe", 20) for p in nodes), 60, "every PE ready")
    wait_for(lambda: dsd.healthy("datasources", 20), 30, "the DSD ready")
    wait_for(lambda: leader_of(dsd), 10, "a leader")
    for rule in ("execute[out:log(n)] :- inbox:alarm(n)",
                 "execute[out:log(n)] :- feed:feed(n)"):
        assert request(nodes[0].api_port, "POST", "/v1/policies/ticking/rules",
                       {"rule": rule})[0] == 201
    flowing(cluster)
    return dsd, nodes


def flowing(cluster, n: int = 10, timeout: float = 60) -> float:
    """Wait for ``n`` more executed ticks; when the first of them ran (wall clock)."""
    before = {a["action_id"] for a in ticks(cluster)}

    def new():
        return [a for a in ticks(cluster) if a["action_id"] not in before]

    wait_for(lambda: len(new()) >= n, timeout, f"{n} more ticks executed")
    return min(a["executed_at"] for a in new())


def ticks(cluster) -> list[dict]:
    return [a for a in cluster.actions() if isinstance(a["args"][0], int)]


class Pusher(threading.Thread):
    """One push every PUSH_EVERY, round-robin over the API nodes, as a client would."""

    def __init__(self, pes):
        super().__init__(daemon=True)
        self.pes = pes
        self.halt = threading.Event()
        self.answers: dict[int, int] = {}  # k -> HTTP status
        self.errors: dict[int, object] = {}

    def run(self) -> None:
        k = 0
        while not self.halt.is_set():
            rows = [[f"p{j}"] for j in range(max(0, k - PUSH_WINDOW + 1), k + 1)]
            port = self.pes[k % len(self.pes)].api_port
            try:
                status, body = request(port, "PUT", "/v1/data-sources/inbox/tables/alarm/rows",
                                       rows, timeout=30)
            except OSError as exc:
                status, body = 0, str(exc)
            self.answers[k] = status
            if status // 100 != 2:
                self.errors[k] = body
            k += 1
            self.halt.wait(PUSH_EVERY)

    def accepted(self) -> list[int]:
        return sorted(k for k, s in self.answers.items() if s // 100 == 2)

    def stop(self) -> None:
        self.halt.set()
        self.join(60)


class Feeder(threading.Thread):
    """A value added to the polled file every FEED_EVERY; the file replaced atomically."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.halt = threading.Event()
        self.written = 1  # f0 is there from the start

    @staticmethod
    def write(path: Path, values: list[str]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"feed": [[v] for v in values]}))
        os.replace(tmp, path)

    def run(self) -> None:
        while not self.halt.wait(FEED_EVERY):
            k = self.written
            self.write(self.path, [f"f{j}" for j in range(max(0, k - FEED_WINDOW + 1),
                                                           k + 1)])
            self.written = k + 1

    def values(self) -> list[str]:
        return [f"f{j}" for j in range(self.written)]

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


class Load:
    """The pusher and the feeder together, started and stopped as one."""

    def __init__(self, cluster, pes):
        self.pusher = Pusher(pes)
        self.feeder = Feeder(cluster.base / "feed.json")

    def __enter__(self) -> Load:
        self.pusher.start()
        self.feeder.start()
        return self

    def __exit__(self, *exc) -> None:
        self.pusher.stop()
        self.feeder.stop()


def down_for(seconds: float, port: int) -> None:
    """Hold an outage for ``seconds``, checking all along that ``port`` refuses."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        time.sleep(0.5)


def check_exactly_once(cluster, load: Load | None) -> None:
    actions = cluster.actions()
    repeated = [i for i, n in Counter(a["action_id"] for a in actions).items() if n > 1]
    assert not repeated, f"actions run more than once: {repeated[:5]}"

    def missing() -> list[int]:
        args = sorted(a["args"][0] for a in ticks(cluster))
        return sorted(set(range(args[0], args[-1] + 1)) - set(args))

    # A PE fills a gap from a snapshot, moments after newer deltas ran.
    try:
        wait_for(lambda: not missing(), 30, "every tick run")
    except AssertionError:
        lost = missing()
        raise AssertionError(f"{len(lost)} ticks lost, e.g. {lost[:5]}") from None
    if load is None:
        return
    expected = [f"p{k}" for k in load.pusher.accepted()] + load.feeder.values()

    def runs() -> Counter:
        return Counter(a["args"][0] for a in cluster.actions())

    try:
        wait_for(lambda: all(runs()[v] for v in expected), 60,
                 "every accepted push and every polled value run")
    except AssertionError:
        counts = runs()
        lost = [v for v in expected if not counts[v]]
        raise AssertionError(f"{len(lost)} of {len(expected)} values lost, "
                             f"e.g. {lost[:5]}") from None
    counts = runs()
    twice = [v for v in expected if counts[v] > 1]
    assert not twice, f"values run twice: {twice[:5]}"


def test_only_the_dsd_topic_has_quorum_queues(cluster, broker):
    start(cluster, pes=1)
    out = broker.ctl("list_queues", "name", "type", "durable")
    queues = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()
              if len(line.split()) == 3 and line.split()[2] in ("true", "false")}
    # The DSD's queues, shared and its own: durable, replicated where there are nodes.
    assert queues.pop("dsd") == ["quorum", "true"], out.stdout
    assert queues.pop("dsd.dsd1:datasources") == ["quorum", "true"], out.stdout
    # The rest carry a process's incarnation or serve one consumer: transient.
    assert queues and all(v == ["classic", "false"] for v in queues.values()), out.stdout


def test_a_request_derived_while_the_broker_is_down_runs_once_when_it_is_back(cluster, broker):
    dsd, pes = start(cluster)
    broker.stop()
    try:
        # The policy change reaches the PEs through the database; the action it
        # derives cannot be cast, so it waits in each PE's outbox.
        port = pes[0].api_port
        assert request(port, "POST", "/v1/policies/ticking/rules",
                       {"rule": "execute[out:log(x)] :- marker(x)"})[0] == 201
        assert request(port, "POST", "/v1/policies/ticking/rules",
                       {"rule": f'marker("{MARK}")'})[0] == 201
        wait_for(lambda: all(p.status().get("policy_engine", {}).get("outbox", 0) >= 1
                             for p in pes), 30, "the marker's request in every PE's outbox")
        problems = pes[0].ctl("status", "--json")
        assert "requests not sent" in problems.stdout, problems.stdout
    finally:
        broker.start()
    wait_for(lambda: any(a["args"] == [MARK] for a in cluster.actions()), 60,
             "the marker's action run")
    wait_for(lambda: all(p.status().get("policy_engine", {}).get("outbox") == 0
                         for p in pes), 30, "every outbox empty")
    flowing(cluster)
    assert sum(1 for a in cluster.actions() if a["args"] == [MARK]) == 1
    check_exactly_once(cluster, None)


def test_broker_restarts_and_outages_lose_and_repeat_nothing(cluster, broker):
    """5 restarts, then the broker down 10 s and 60 s, while ticks and pushes flow;
    pushes are accepted all along (the database is up)."""
    dsd, pes = start(cluster)
    gaps = []
    with Load(cluster, pes) as load:
        for _ in range(5):
            broker.restart()
            back = time.time()
            gaps.append(flowing(cluster, 5) - back)
        for outage in (10, 60):
            broker.stop()
            down_for(outage, broker.port)
            broker.start()
            back = time.time()
            gaps.append(flowing(cluster, 5, timeout=90) - back)
    print(f"broker back -> first action: {', '.join(f'{g:.2f}' for g in gaps)} s; "
          f"{len(load.pusher.answers)} pushes, {load.feeder.written} polled values")
    assert not load.pusher.errors, ("pushes refused while the broker was away: "
                                    f"{list(load.pusher.errors.items())[:3]}")
    check_exactly_once(cluster, load)


def test_the_database_restarting_or_down_loses_and_repeats_nothing(cluster, pg):
    """Actions wait for the journal while the database is away; pushes made while it
    is up are accepted; nothing runs twice."""
    dsd, pes = start(cluster)
    with Load(cluster, pes) as load:
        pg.stop()
        pg.resume()
        flowing(cluster, 5)
        pg.stop()
        # A tick derived now waits in the DSD for the journal, and says so.
        wait_for(lambda: (dsd.status().get("datasources") or {}).get("journal_waiting"),
                 30, "the DSD waiting for the journal")
        down_for(10, pg.port)
        pg.resume()
        flowing(cluster, 5)
    refused = {s for k, s in load.pusher.answers.items() if s // 100 != 2}
    assert refused <= {503}, ("a push refused other than as unavailable: "
                              f"{list(load.pusher.errors.items())[:3]}")
    check_exactly_once(cluster, load)


def test_pushes_are_accepted_while_no_dsd_runs_and_published_by_the_next(cluster):
    dsd, pes = start(cluster)
    with Load(cluster, pes) as load:
        dsd.kill()
        # Pacemaker's failover, by hand: a new DSD on another node a while later.
        wait_for(lambda: len(load.pusher.answers) >= 30, 60, "30 pushes without a DSD")
        new = cluster.add_dsd("dsd2").start()
        wait_for(lambda: new.healthy("datasources", 20), 60, "the new DSD ready")
        flowing(cluster, 10)
    assert not load.pusher.errors, ("pushes refused during the DSD failover: "
                                    f"{list(load.pusher.errors.items())[:3]}")
    check_exactly_once(cluster, load)
