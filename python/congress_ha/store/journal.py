"""The execution journal: an action_id is recorded before its action runs.

The primary key makes the insert the gate: of two DSDs that try to run one
action (an old one not yet dead, a new one replaying), only one insert wins.
On Galera the loser of two inserts made on two nodes at once learns it at
COMMIT, as a failed certification (a deadlock error): the insert is made again
until the winner's row is seen (False) or it wins. The price: an action whose
DSD dies between the insert and the execution is recorded but not run (at most
once, never twice; see docs/architecture.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from congress_ha.store.db import StoreError
from congress_ha.store.errors import lost_race
from congress_ha.store.models import ActionJournal

LOST_RACE_TRIES = 10   # inserts of one row before a lost race counts as an outage
LOST_RACE_PAUSE = 0.01  # s, times the attempt: time for the winner's row to arrive


class Journal:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def record(self, action_id: str, datasource: str, action: str, args: list,
               leader: str, executor: str, reason: str) -> bool:
        """True if this call recorded the action (so it must run now).

        StoreError if the database is away, or if the insert kept losing races
        (LOST_RACE_TRIES times): the caller retries later, as for an outage.
        """
        for attempt in range(LOST_RACE_TRIES):
            row = ActionJournal(action_id=action_id, datasource=datasource, action=action,
                                args=list(args), leader=leader, executor=executor,
                                reason=reason,
                                executed_at=datetime.now(UTC).replace(tzinfo=None))
            try:
                with self.sessions.begin() as session:
                    session.add(row)
                return True
            except IntegrityError:
                return False
            except SQLAlchemyError as exc:
                if lost_race(exc) and attempt + 1 < LOST_RACE_TRIES:
                    # Rolled back whole: the other insert (of this action_id, or of
                    # a row next to it in the index) was certified first. Its row
                    # reaches this node within moments; then IntegrityError says so.
                    time.sleep(LOST_RACE_PAUSE * (attempt + 1))
                    continue
                raise StoreError(f"journal write failed: {str(exc).splitlines()[0]}"
                                 ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def recent_ids(self, limit: int = 100_000) -> list[str]:
        with self.sessions() as session:
            rows = session.execute(
                select(ActionJournal.action_id).order_by(ActionJournal.executed_at.desc())
                .limit(limit)).scalars().all()
        return list(rows)

    def count(self) -> int:
        try:
            with self.sessions() as session:
                return session.execute(
                    select(func.count()).select_from(ActionJournal)).scalar_one()
        except SQLAlchemyError as exc:
            raise StoreError(f"journal count failed: {str(exc).splitlines()[0]}") from None
