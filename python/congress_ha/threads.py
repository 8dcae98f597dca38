"""Supervised background threads: a thread that dies says why, and health knows.

Every long-lived thread of a role is a ``Supervised`` thread. If its loop ends
with an exception, or returns while nobody asked it to stop, it records why and
logs it; ``Server.health`` at depth 10 and above then answers failed with that
reason, so Pacemaker restarts the process instead of keeping a half-dead one.
(The first wave let a table-sync thread die while health still said ok.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

LOG = logging.getLogger(__name__)
_current = threading.local()


def thread_member() -> str | None:
    """The bus member (``node:role``) whose supervised thread is running, if any."""
    return getattr(_current, "member", None)


class MemberFilter(logging.Filter):
    """Puts ``%(member)s`` in every record: the member of the supervised thread
    that logs, else the node id (API and bus threads). Installed once by the
    server's logging setup, so no log call spells its node."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.member = thread_member() or self.node_id
        return True


class Supervised(threading.Thread):
    """A daemon thread running ``target``; ``died`` holds why it ended, if it did."""

    def __init__(self, name: str, target: Callable[[], None], member: str = "",
                 stopping: Callable[[], bool] = lambda: False) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self._member = member
        self._stopping = stopping
        self.died: str | None = None

    def run(self) -> None:
        _current.member = self._member or None
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 - recorded, logged, reported by health
            self.died = f"{type(exc).__name__}: {exc}"
            LOG.exception("thread %s died: %s", self.name, self.died)
            return
        if not self._stopping():
            self.died = "its loop returned although nothing asked it to stop"
            LOG.error("thread %s ended: %s", self.name, self.died)


def why_dead(t: threading.Thread) -> str | None:
    """Why ``t`` no longer runs as it should, or None while it does (or has not
    started yet, or was asked to stop)."""
    reason = getattr(t, "died", None)
    if reason is not None:
        return f"thread {t.name} died ({reason})"
    if t.ident is not None and not t.is_alive() and not getattr(t, "_stopping",
                                                                lambda: True)():
        return f"thread {t.name} is not running"
    return None


def dead(threads: Iterable[threading.Thread | None]) -> list[str]:
    """Reasons for every supervised thread that is no longer running as it should."""
    return [why for why in (why_dead(t) for t in threads if t is not None) if why]
