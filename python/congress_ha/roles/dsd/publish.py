"""The DSD's table publication: checked rows, sequence numbers, deltas, snapshots.

Every table content a driver publishes is checked by the engine's own row
check (what the DSD sends, every PE can apply), turned into a delta with the
datasource's next sequence number and broadcast on the ``tables`` topic.  A
datasource is *announced* (in the heartbeat's seqs, and to snapshot calls)
only once its driver has started, so the schema PEs see is the one the
driver's first read gave.
"""

from __future__ import annotations

import logging
import threading
import time

from congress_ha.bus.contract import TABLE_DELTA, send
from congress_ha.bus.messages import Snapshot
from congress_ha.bus.tables import TablePublisher
from congress_ha.bus.transport import BusError, Transport
from congress_ha.bus.wire import MAX_ROWS
from congress_ha.datasources.base import Driver, DriverError, Publish
from congress_ha.engine import PolicyError
from congress_ha.engine.engine import check_rows

LOG = logging.getLogger(__name__)


class Publication:
    """What the DSD publishes: one ``TablePublisher``, fed by the drivers."""

    def __init__(self, transport: Transport, incarnation: str, max_rows: int):
        self.transport = transport
        self.publisher = TablePublisher(incarnation)
        self.lock = threading.Lock()
        self.max_rows = min(max_rows, MAX_ROWS)
        self.limit = f"[limits] max_rows_per_table = {max_rows}"
        if max_rows > MAX_ROWS:
            self.limit = f"{MAX_ROWS}, the most the bus carries ({self.limit} is above it)"
            LOG.warning("[limits] max_rows_per_table = %d is above the %d rows of a table "
                        "that the bus carries: tables are held to %d", max_rows, MAX_ROWS,
                        MAX_ROWS)
        self.updates: dict[str, tuple[int, float]] = {}  # name -> (count, wall time)
        self._announced: set[str] = set()

    # -- datasources ----------------------------------------------------------

    def attach(self, name: str, driver: Driver) -> None:
        """Take ``driver``'s tables as datasource ``name``; announced by ``announce``."""
        with self.lock:
            self.publisher.add_datasource(name, driver.schema())

    def announce(self, name: str, driver: Driver) -> None:
        """``driver`` has started: its schema is final, PEs may see the datasource."""
        with self.lock:
            if name in self.publisher.seqs:
                self.publisher.set_schema(name, driver.schema())
                self._announced.add(name)

    def detach(self, name: str) -> None:
        with self.lock:
            self.publisher.remove_datasource(name)
            self._announced.discard(name)

    # -- publishing -----------------------------------------------------------

    def sink(self, name: str) -> Publish:
        """The ``publish(table, rows)`` a driver of datasource ``name`` is given."""
        def publish(table: str, rows) -> None:
            rows = self.checked(name, table, rows)
            with self.lock:
                if name not in self.publisher.seqs:
                    return  # stopped meanwhile
                delta = self.publisher.replace(name, table, rows)
                count, _ = self.updates.get(name, (0, 0.0))
                self.updates[name] = (count + 1, time.time())
            if delta is None:
                return
            try:
                send(self.transport, TABLE_DELTA, delta, retry=0)
            except BusError as exc:
                # PEs see the gap in sequence numbers and ask for a snapshot.
                LOG.warning("delta %s#%d not sent: %s", name, delta.seq, exc)
        return publish

    def checked(self, name: str, table: str, rows) -> list[tuple]:
        """The rows, checked by the engine's own check (DriverError if bad): what the
        DSD publishes, every PE can apply."""
        if isinstance(rows, list | tuple | set) and len(rows) > self.max_rows:
            raise DriverError(f"datasource {name} table {table}: {len(rows)} rows; the "
                              f"limit is {self.limit}")
        columns = self.publisher.schemas.get(name, {}).get(table)
        try:
            return check_rows(name, table, rows, len(columns) if columns else None)
        except PolicyError as exc:
            raise DriverError(str(exc)) from None

    # -- views ----------------------------------------------------------------

    def seqs(self) -> dict[str, int]:
        """The latest sequence number of each announced datasource."""
        with self.lock:
            return {n: s for n, s in self.publisher.seqs.items() if n in self._announced}

    def snapshot(self, name: str) -> Snapshot | None:
        with self.lock:
            if name not in self._announced:
                return None
            return self.publisher.snapshot(name)

    def row_count(self, name: str, table: str) -> int:
        """How many rows of ``table`` are published now."""
        with self.lock:
            return len(self.publisher.tables.get(name, {}).get(table, ()))

    def updated(self, name: str) -> tuple[int, float]:
        """How many times ``name``'s tables changed, and when last (wall clock, 0: never)."""
        return self.updates.get(name, (0, 0.0))

