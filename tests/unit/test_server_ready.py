"""Server.ready(): a process is ready only when every role is, its API included."""

import argparse

from congress_ha.server import Server


class Part:
    def __init__(self, ok=True, why="ready", threads=()):
        self.answer = (ok, why)
        self._threads = list(threads)

    def threads(self):
        return self._threads

    def ready(self):
        return self.answer


class Api:
    def __init__(self, listening):
        self._listening = listening
        self.threads = []

    def listening(self):
        return self._listening


class Node:
    def threads(self):
        return []


def server(api_role: bool, pe=None, dsd=None, api=None) -> Server:
    s = Server.__new__(Server)  # no bus: ready() looks only at the roles and threads
    s.node = Node()
    s.args = argparse.Namespace(api=api_role, policy_engine=pe is not None,
                                datasources=dsd is not None)
    s.pe, s.dsd, s.api = pe, dsd, api
    return s


def test_all_in_one_is_not_ready_until_the_api_listens():
    assert server(True, Part(), Part(), None).ready() == (False, "API not listening yet")
    assert server(True, Part(), Part(), Api(False)).ready()[0] is False
    assert server(True, Part(), Part(), Api(True)).ready() == (True, "ready")


def test_a_dsd_only_process_needs_no_api():
    assert server(False, None, Part(), None).ready() == (True, "ready")


def test_the_first_role_not_ready_gives_the_reason():
    s = server(True, Part(False, "not synced: ticks"), Part(), Api(True))
    assert s.ready() == (False, "not synced: ticks")


def test_a_dead_thread_makes_the_process_not_ready_and_says_which():
    import threading

    from congress_ha.threads import Supervised

    def boom():
        raise IndexError("list index out of range")

    t = Supervised("table-sync", boom)
    t.start()
    t.join(5)
    s = server(False, Part(threads=[t]), None, None)
    ok, why = s.ready()
    assert not ok and why == "thread table-sync died (IndexError: list index out of range)"
    assert isinstance(t, threading.Thread)


def test_a_thread_that_returns_unasked_is_reported_and_one_asked_to_stop_is_not():
    from congress_ha.threads import Supervised, dead

    stop = {"asked": False}
    early = Supervised("reload", lambda: None, stopping=lambda: stop["asked"])
    early.start()
    early.join(5)
    assert dead([early]) == ["thread reload died (its loop returned although nothing "
                             "asked it to stop)"]
    stop["asked"] = True
    fine = Supervised("reload", lambda: None, stopping=lambda: stop["asked"])
    fine.start()
    fine.join(5)
    assert dead([fine]) == []


def test_the_metrics_view_shows_each_thread_up_or_not_and_every_refusal_kind():
    from types import SimpleNamespace

    from congress_ha.threads import Supervised

    def boom():
        raise IndexError("gone")

    t = Supervised("table-sync", boom)
    t.start()
    t.join(5)
    alive = Supervised("heartbeat", lambda: None, stopping=lambda: True)
    s = server(False, None, Part(threads=[t, alive]), None)
    s.role = "datasources"
    s.transport = SimpleNamespace(refusals=lambda: {"stale": 3})
    s.dsd.metrics_view = lambda: None
    view = s.metrics_view()
    assert view.threads == {"table-sync": False, "heartbeat": True}
    assert view.bus_refusals == {"forged": 0, "stale": 3, "replayed": 0, "invalid": 0,
                                 "unsupported": 0}
    assert view.role == "datasources" and view.ready is False
