"""A PE keeps every request whose cast failed and sends it, in order, when the
broker takes casts again: a broker outage loses no request (issue 14)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from congress_ha.bus.transport import BusError
from congress_ha.engine import Engine
from congress_ha.roles import policy_engine
from congress_ha.roles.policy_engine import PolicyEngineRole


class Broker:
    """Stands for send(): records what the broker confirmed, refuses while down."""

    def __init__(self):
        self.up = True
        self.attempts = 0
        self.confirmed: list[str] = []

    def send(self, transport, method, request, retry=None):
        self.attempts += 1
        if not self.up:
            raise BusError("could not deliver execute_action: the broker is unreachable")
        self.confirmed.append(request.action_id)


@pytest.fixture
def pe(monkeypatch):
    broker = Broker()
    monkeypatch.setattr(policy_engine, "send", broker.send)
    settings = SimpleNamespace(ha=SimpleNamespace(heartbeat_interval=0.25))
    node = SimpleNamespace(member="pe1:api-pe", incarnation="i1")
    role = PolicyEngineRole(settings, node, None, Engine(), threading.RLock())
    role.sending = True
    return role, broker


def action(n: int):
    return SimpleNamespace(action_id=f"a{n}", datasource="out", action="log", args=(n,))


def test_requests_cast_while_the_broker_is_down_are_sent_in_order_when_it_is_back(pe):
    role, broker = pe
    role.request_action(action(1))
    broker.up = False
    for n in (2, 3, 4):
        role.request_action(action(n))
    # One failed cast; the later ones queue behind it without waiting out retries.
    assert broker.attempts == 2
    assert [r.action_id for r in role.unsent] == ["a2", "a3", "a4"]
    assert role.flush_unsent() == 0 and len(role.unsent) == 3
    broker.up = True
    role.request_action(action(5))          # behind the outbox, not before it
    assert broker.confirmed == ["a1"]
    assert role.flush_unsent() == 4
    assert broker.confirmed == ["a1", "a2", "a3", "a4", "a5"]
    assert not role.unsent
    assert role.view()["outbox"] == 0 and role.view()["outbox_dropped"] == 0


def test_a_full_outbox_drops_its_oldest_and_counts_it(pe, monkeypatch):
    role, broker = pe
    monkeypatch.setattr(policy_engine, "RESEND_MAX", 2)
    broker.up = False
    for n in (1, 2, 3):
        role.request_action(action(n))
    assert [r.action_id for r in role.unsent] == ["a2", "a3"]
    assert role.unsent_dropped == 1 and role.view()["outbox_dropped"] == 1
    broker.up = True
    role.flush_unsent()
    assert broker.confirmed == ["a2", "a3"]


def test_a_stopped_pe_sends_nothing_new(pe):
    role, broker = pe
    role.sending = False
    role.request_action(action(1))
    assert broker.attempts == 0 and not role.unsent
