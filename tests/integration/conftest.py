"""Fixtures: one private RabbitMQ broker per module, a fresh cluster per test."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.broker import running_broker
from tests.support.procs import Cluster

WINDOW = 100  # ticks kept in the ticker's table: the burst of actions at start


@pytest.fixture(scope="module")
def broker():
    with running_broker("chit") as b:
        yield b


@pytest.fixture
def cluster(broker, request):
    base = Path(tempfile.mkdtemp(prefix="chit-cluster-"))
    c = Cluster(base, broker.url)
    c.seed_datasources(rate=20, window=WINDOW)
    yield c
    c.stop_all()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(f"logs and action log kept in {base}")  # shown with the failure
        for proc in c.procs.values():
            print(f"==== {proc.name} log ====\n{proc.logtext()[-4000:]}")
    else:
        shutil.rmtree(base, ignore_errors=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
