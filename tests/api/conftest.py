"""A real ``congress-ha-server --all`` (fake:// transport, SQLite) per test module."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http import request
from tests.support.procs import Cluster, Proc, wait_for


def _up(port: int) -> bool:
    try:
        return request(port, "GET", "/healthz", timeout=1.0)[0] == 200
    except OSError:
        return False


def start_solo(prefix: str, extra: str = "") -> tuple[Cluster, Proc, Path]:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = Cluster(base, "fake://", extra=extra)
    proc = cluster.add("solo", ["--all"])
    proc.start()
    try:
        wait_for(lambda: _up(proc.api_port) or not proc.running(), 30, "the API to answer")
        if not proc.running():
            raise AssertionError(f"server exited at start:\n{proc.logtext()[-3000:]}")
    except BaseException:
        cluster.stop_all()
        raise
    return cluster, proc, base


@pytest.fixture(scope="module")
def solo(request) -> Iterator[Proc]:
    cluster, proc, base = start_solo(f"api-{request.module.__name__.rsplit('.', 1)[-1]}-")
    try:
        yield proc
    finally:
        cluster.stop_all()
        if request.session.testsfailed:
            print(f"==== server log ====\n{proc.logtext()[-6000:]}")
        shutil.rmtree(base, ignore_errors=True)
