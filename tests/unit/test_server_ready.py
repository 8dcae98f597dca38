"""Server.ready(): a process is ready only when every role is, its API included."""

import argparse

from congress_ha.server import Server


class Part:
    def __init__(self, ok=True, why="ready"):
        self.answer = (ok, why)

    def ready(self):
        return self.answer


class Api:
    def __init__(self, listening):
        self._listening = listening

    def listening(self):
        return self._listening


def server(api_role: bool, pe=None, dsd=None, api=None) -> Server:
    s = Server.__new__(Server)  # no bus: ready() looks only at the roles
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
