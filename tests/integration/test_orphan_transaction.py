"""A writer frozen between its INSERT and its COMMIT does not block its successor.

The process is stopped (SIGSTOP) with its transaction open: to the database
that is a host cut off or powered off mid-write, since no FIN or RST ever
arrives.  Without a bound the server keeps that transaction, and its row
locks, for hours; the DSD that takes over blocks on the same journal key and
no action runs (seen in the e2e partition test).  With the bound the server
ends the orphan after ORPHAN_TRANSACTION_TIMEOUT and the successor's write
goes through; exactly once still holds: the orphan's row is rolled back.

On real PostgreSQL and MariaDB servers (SQLite's lock is a file lock of the
process, released by the kernel).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from congress_ha.store.db import ORPHAN_TRANSACTION_TIMEOUT, open_engine, session_factory
from congress_ha.store.journal import Journal
from congress_ha.store.policies import PolicyStore
from tests.support.mariadb import MariaDB
from tests.support.postgres import Postgres

pytestmark = pytest.mark.integration

# The frozen writer: one write left uncommitted, then "ready", then it waits to be stopped.
WRITER = r"""
import sys, time
from sqlalchemy import update
from congress_ha.store.db import open_engine, session_factory
from congress_ha.store.models import ActionJournal, PolicyRevision
from datetime import datetime
url, what = sys.argv[1], sys.argv[2]
s = session_factory(open_engine(url))()
if what == "journal":
    s.add(ActionJournal(action_id="a-1", datasource="out", action="log", args=[1],
                        leader="pe1", executor="old-dsd", reason="test",
                        executed_at=datetime.now()))
else:
    s.execute(update(PolicyRevision).where(PolicyRevision.id == 1).values(revision=1))
s.flush()
print("ready", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database(request):
    db = Postgres(prefix="chit") if request.param == "postgresql" else MariaDB("chit")
    try:
        db.start()
        yield db
    finally:
        db.cleanup()


def _frozen_writer(url: str, what: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", WRITER, url, what], stdout=subprocess.PIPE,
                         text=True, env=env)
    line = p.stdout.readline()
    assert line.strip() == "ready", f"writer did not start (rc {p.poll()})"
    os.kill(p.pid, signal.SIGSTOP)
    return p


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc
        out["at"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


@pytest.mark.parametrize("what", ["journal", "revision"])
def test_a_frozen_writer_does_not_block_the_next_one(database, what):
    url = database.create_database(f"orphan_{what}")
    engine = open_engine(url)
    writer = _frozen_writer(url, what)
    try:
        t0 = time.monotonic()
        if what == "journal":
            t, out = _in_thread(lambda: Journal(session_factory(engine)).record(
                "a-1", "out", "log", [1], "pe2", "new-dsd", "test"))
        else:
            t, out = _in_thread(lambda: PolicyStore(session_factory(engine)).create_policy(
                0, "after-orphan", "", "", "nonrecursive")[0])
        t.join(ORPHAN_TRANSACTION_TIMEOUT + 25)
        assert not t.is_alive(), (f"the {what} write is still blocked "
                                  f"{time.monotonic() - t0:.0f} s behind a frozen writer")
        assert "error" not in out, f"the {what} write failed: {out.get('error')}"
        # The orphan was rolled back, so the successor's write is the one that counts.
        assert out["value"] == (True if what == "journal" else 1)
        waited = out["at"] - t0
        print(f"\n{what} write behind a frozen writer went through after {waited:.2f} s")
        assert waited >= ORPHAN_TRANSACTION_TIMEOUT - 1, \
            f"not blocked at all ({waited:.1f} s): the writer held no lock, the test proves nothing"
    finally:
        writer.kill()  # SIGKILL ends a stopped process too
        writer.wait(10)
        engine.dispose()
