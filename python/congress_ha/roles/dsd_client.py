"""Calls from an api-pe process to the DSD, wherever Pacemaker runs it.

Each is an RPC on the ``dsd`` topic with ``[ha] rpc_timeout``; no DSD (or no
broker) is ``Unavailable`` (HTTP 503) with the reason, never a hang.
"""

from __future__ import annotations

from typing import Any

from congress_ha.bus.transport import TOPIC_DSD, TOPIC_HEARTBEAT, BusError, Transport
from congress_ha.errors import InvalidInput, NotFound, Unavailable


class DsdClient:
    def __init__(self, transport: Transport):
        self.transport = transport

    def _call(self, method: str, **kwargs) -> Any:
        try:
            answer = self.transport.call(TOPIC_DSD, method, **kwargs)
        except BusError as exc:
            raise Unavailable(f"the datasource driver (DSD) did not answer: {exc}") from None
        if isinstance(answer, dict) and answer.get("error"):
            kind = answer.get("kind")
            cls = {"invalid": InvalidInput, "not_found": NotFound}.get(kind, Unavailable)
            raise cls(answer["error"])
        return answer

    def push_rows(self, datasource: str, table: str, rows: list) -> None:
        self._call("push_rows", datasource=datasource, table=table, rows=rows)

    def status(self, datasource: str) -> dict[str, Any]:
        return self._call("datasource_status", datasource=datasource)

    def execute(self, datasource: str, action: str, args: list) -> None:
        self._call("execute_direct", datasource=datasource, action=action, args=args)

    def refresh(self, datasource: str) -> None:
        self._call("refresh", datasource=datasource)

    def datasources_changed(self) -> None:
        """Tell the DSD (and everyone) to reload datasources; it also polls."""
        try:
            self.transport.broadcast(TOPIC_HEARTBEAT, "datasources_changed", retry=1)
        except BusError:
            pass  # the DSD's poll picks the change up

    def policy_changed(self, revision: int) -> None:
        try:
            self.transport.broadcast(TOPIC_HEARTBEAT, "policy_changed", retry=1,
                                     revision=revision)
        except BusError:
            pass  # every PE polls the revision too
