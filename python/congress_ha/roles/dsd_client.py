"""Calls from an api-pe process to the DSD, wherever Pacemaker runs it.

Each is a method of the ``dsd`` topic (bus/contract.py) with ``[ha]
rpc_timeout``; no DSD (or no broker) is ``Unavailable`` (HTTP 503) with the
reason, never a hang.
"""

from __future__ import annotations

from typing import Any

from congress_ha.bus.contract import (
    DATASOURCE_STATUS,
    DATASOURCES_CHANGED,
    EXECUTE_DIRECT,
    POLICY_CHANGED,
    PUSH_STORED,
    REFRESH,
    ErrorReply,
    Method,
    call,
    send,
)
from congress_ha.bus.messages import (
    DatasourcesChanged,
    DatasourceStatusRequest,
    ExecuteDirect,
    PolicyChanged,
    PushStored,
    RefreshRequest,
)
from congress_ha.bus.transport import BusError, Transport
from congress_ha.bus.wire import dump
from congress_ha.errors import InvalidInput, NotFound, Unavailable
from congress_ha.timings import seconds

ERRORS = {"invalid": InvalidInput, "not_found": NotFound}  # other kinds: Unavailable
PUSH_NOTICE_WAIT = seconds("PUSH_NOTICE_WAIT")


class DsdClient:
    def __init__(self, transport: Transport):
        self.transport = transport

    def _call(self, method: Method, message: Any) -> Any:
        try:
            return call(self.transport, method, message)
        except BusError as exc:
            raise Unavailable(f"the datasource driver (DSD) did not answer: {exc}") from None
        except ErrorReply as exc:
            raise ERRORS.get(exc.kind, Unavailable)(str(exc)) from None

    def push_stored(self, datasource: str, table: str) -> bool:
        """Ask the DSD to publish a push just stored; False if it did not answer
        within PUSH_NOTICE_WAIT (its poll publishes it once it and the bus are back)."""
        try:
            call(self.transport, PUSH_STORED, PushStored(datasource, table),
                 timeout=PUSH_NOTICE_WAIT, retry=0)
        except (BusError, ErrorReply):
            return False
        return True

    def status(self, datasource: str) -> dict[str, Any]:
        return dump(self._call(DATASOURCE_STATUS, DatasourceStatusRequest(datasource)))

    def execute(self, datasource: str, action: str, args: list) -> None:
        self._call(EXECUTE_DIRECT, ExecuteDirect(datasource, action, list(args)))

    def refresh(self, datasource: str) -> None:
        self._call(REFRESH, RefreshRequest(datasource))

    def datasources_changed(self) -> None:
        """Tell the DSD (and everyone) to reload datasources; it also polls."""
        try:
            send(self.transport, DATASOURCES_CHANGED, DatasourcesChanged(), retry=1)
        except BusError:
            pass  # the DSD's poll picks the change up

    def policy_changed(self, revision: int) -> None:
        try:
            send(self.transport, POLICY_CHANGED, PolicyChanged(revision), retry=1)
        except BusError:
            pass  # every PE polls the revision too
