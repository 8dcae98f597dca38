"""The ``file`` driver: rows from files, and actions logged as JSON lines.

Config: ``{"path": FILE_OR_DIR (optional), "action_log": FILE,
"poll_interval": seconds (default 5)}``.  ``path`` holds tables as JSON or
YAML (``{"table": [[...], ...]}``) or CSV (one table per file, named after the
file, first line the column names); a directory holds several such files.
Any action name is accepted: executing one appends exactly one line
``{"action_id", "action", "args", "leader", "executed_at"}`` to action_log
and flushes it, so tests and operators can count every execution.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
import threading
import time
from pathlib import Path

import yaml

from congress_ha.datasources.base import ActionContext, Driver, DriverError
from congress_ha.engine import PolicyError
from congress_ha.engine.engine import check_rows

MAX_FILE_BYTES = 64 * 1024 * 1024


class FileDriver(Driver):
    description = "Rows from JSON, YAML or CSV files; any action appends a JSON line."
    config_help = {"path": "optional file or folder of .json/.yaml/.csv tables",
                   "action_log": "file each executed action is appended to",
                   "poll_interval": "seconds between re-reads of path (default 5)"}
    actions = None  # any action name

    def __init__(self, name, config, publish):
        super().__init__(name, config, publish)
        self.action_log = self.config.get("action_log")
        if not self.action_log or not isinstance(self.action_log, str):
            raise DriverError(f"datasource {name}: file driver needs config "
                              "'action_log': the path of the file actions are logged to")
        self.path = self.config.get("path")
        if self.path is not None and not isinstance(self.path, str):
            raise DriverError(f"datasource {name}: 'path' must be a file or folder path")
        try:
            self.poll_interval = float(self.config.get("poll_interval", 5))
        except (TypeError, ValueError):
            raise DriverError(f"datasource {name}: 'poll_interval' must be a number") from None
        self.polls = bool(self.path)
        self._lock = threading.Lock()
        # The tables of the first read: the schema the DSD announces.
        self._files: dict[str, tuple[list[str], list[tuple]]] = {}

    def schema(self) -> dict[str, list[str]]:
        return {t: cols for t, (cols, _) in self._files.items()}

    def probe(self) -> dict[str, list[str]]:
        return {t: cols for t, (cols, _) in self._read().items()} if self.path else {}

    def start(self) -> None:
        if self.path:
            self._files = self._read()  # DriverError: the DSD says why and retries
            for table, (_cols, rows) in self._files.items():
                self.publish(table, rows)
            self._every(self.poll_interval, self.poll, f"file-{self.name}")

    def poll(self) -> None:
        try:
            tables = self._read()
        except DriverError as exc:
            self.last_error = str(exc)
            return
        for table, (_cols, rows) in tables.items():
            self.publish(table, rows)

    def _read(self) -> dict[str, tuple[list[str], list[tuple]]]:
        """Every table of ``path``, checked whole (DriverError naming the file if not).

        Checked by the engine's own row check, so a file that reads here is one
        every PE can apply; a FIFO or a device is refused, never opened (a read
        would block the thread), and so is a file over MAX_FILE_BYTES.
        """
        base = Path(self.path)
        try:
            files = sorted(base.iterdir()) if base.is_dir() else [base]
        except OSError as exc:
            raise DriverError(f"datasource {self.name}: cannot list {base}: "
                              f"{exc.strerror}") from None
        tables: dict[str, tuple[list[str], list[tuple]]] = {}
        for f in files:
            if f.suffix not in (".csv", ".json", ".yaml", ".yml"):
                continue
            try:
                text = self._read_file(f)
                for table, cols, rows in self._parse(f, text):
                    tables[table] = (cols, check_rows(self.name, table, rows, len(cols)))
            except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError,
                    PolicyError) as exc:
                raise DriverError(f"datasource {self.name}: cannot read {f}: {exc}") from None
        return tables

    def _read_file(self, f: Path) -> str:
        """The file's text. Opened without following a link and without blocking
        (a FIFO swapped in answers at once), then checked on the open file
        itself, so what is checked is what is read."""
        try:
            fd = os.open(f, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DriverError(f"datasource {self.name}: {f} is a symbolic link; name "
                                  "the file itself") from None
            raise
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise DriverError(f"datasource {self.name}: {f} is not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise DriverError(f"datasource {self.name}: {f} is {info.st_size} bytes; "
                                  f"the limit is {MAX_FILE_BYTES}")
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # it grew while being read
            raise DriverError(f"datasource {self.name}: {f} is over {MAX_FILE_BYTES} bytes")
        return data.decode("utf-8")

    def _parse(self, f: Path, text: str) -> list[tuple[str, list[str], list]]:
        if f.suffix == ".csv":
            reader = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
            if not reader:
                return []
            return [(f.stem, reader[0], [tuple(_num(v) for v in r) for r in reader[1:]])]
        data = json.loads(text) if f.suffix == ".json" else yaml.safe_load(text)
        if data is None:
            return []
        if not isinstance(data, dict):
            raise ValueError("expected an object of tables: {\"table\": [[value, ...], ...]}")
        out = []
        for table, rows in data.items():
            if not isinstance(table, str) or not isinstance(rows, list) or not all(
                    isinstance(r, list) for r in rows):
                raise ValueError(f"table {table!r}: expected a list of rows, each a list")
            width = len(rows[0]) if rows else 0
            out.append((table, [f"col{i}" for i in range(width)], rows))
        return out

    def execute(self, action: str, args: list, context: ActionContext) -> None:
        line = json.dumps({"action_id": context.action_id, "action": action,
                           "args": list(args), "leader": context.leader,
                           "executed_at": time.time()}, sort_keys=True)
        with self._lock:
            # Never through a link, and only into a regular file (a FIFO or a
            # device named here would block or write elsewhere).
            fd = os.open(self.action_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                         | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o640)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise DriverError(f"datasource {self.name}: action_log "
                                      f"{self.action_log} is not a regular file")
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)


def _num(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
