"""The ``file`` driver: executes any action by appending one JSON line to a log.

Config: ``{"action_log": FILE}``.  Each execution appends exactly one line
``{"action_id", "action", "args", "leader", "executed_at"}`` and flushes it,
so tests and operators can count every execution.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from congress_ha.datasources.base import Driver, DriverError


class FileDriver(Driver):
    tables: dict[str, list[str]] = {}
    actions = None  # any action name

    def __init__(self, name, config, publish):
        super().__init__(name, config, publish)
        self.action_log = self.config.get("action_log")
        if not self.action_log or not isinstance(self.action_log, str):
            raise DriverError(f"datasource {name}: file driver needs config "
                              "'action_log': the path of the file actions are logged to")
        self._lock = threading.Lock()

    def execute(self, action: str, args: list, context: dict[str, Any]) -> None:
        line = json.dumps({"action_id": context.get("action_id"), "action": action,
                           "args": list(args), "leader": context.get("leader"),
                           "executed_at": time.time()}, sort_keys=True)
        with self._lock:
            fd = os.open(self.action_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
