"""The ``file`` driver: rows from files, and actions logged as JSON lines.

Config: ``{"path": FILE_OR_DIR (optional), "action_log": FILE,
"poll_interval": seconds (default 5)}``; both paths inside ``[drivers]
file_allowed_dirs`` of the node's config (confine.py: no ``..``, no link on
the way, only regular files).  ``path`` holds tables as JSON or
YAML (``{"table": [[...], ...]}``) or CSV (one table per file, named after the
file, first line the column names); a directory holds several such files.
Any action name is accepted: executing one appends exactly one line
``{"action_id", "action", "args", "leader", "executed_at"}`` to action_log
and flushes it, so tests and operators can count every execution.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from pathlib import Path

import yaml

from congress_ha.datasources.base import ActionContext, Driver, DriverError
from congress_ha.datasources.confine import OPTION, AllowedDirs, Outside, Refused, open_in
from congress_ha.engine import PolicyError
from congress_ha.engine.engine import check_rows

MAX_FILE_BYTES = 64 * 1024 * 1024


SUFFIXES = (".csv", ".json", ".yaml", ".yml")


class FileDriver(Driver):
    description = ("Rows from JSON, YAML or CSV files; any action appends a JSON line. "
                   "Files only inside [drivers] file_allowed_dirs.")
    config_help = {"path": "optional file or folder of .json/.yaml/.csv tables, inside "
                           "[drivers] file_allowed_dirs",
                   "action_log": "file each executed action is appended to, inside "
                                 "[drivers] file_allowed_dirs",
                   "poll_interval": "seconds between re-reads of path (default 5)"}
    actions = None  # any action name

    def __init__(self, name, config, publish, settings=None):
        super().__init__(name, config, publish, settings)
        self.allowed = AllowedDirs(self.settings.file_allowed_dirs)
        self.action_log = self.config.get("action_log")
        if not self.action_log or not isinstance(self.action_log, str):
            raise DriverError(f"datasource {name}: file driver needs config "
                              "'action_log': the path of the file actions are logged to")
        self.path = self.config.get("path")
        if self.path is not None and not isinstance(self.path, str):
            raise DriverError(f"datasource {name}: 'path' must be a file or folder path")
        # By their text here (no I/O: API nodes build drivers to check a config);
        # again on the file system at every start, read and append.
        for key in ("path", "action_log"):
            if self.config.get(key):
                try:
                    self.allowed.locate(self.config[key])
                except Refused as exc:
                    raise self._refused(key, exc) from None
        try:
            self.poll_interval = float(self.config.get("poll_interval", 5))
        except (TypeError, ValueError):
            raise DriverError(f"datasource {name}: 'poll_interval' must be a number") from None
        self.polls = bool(self.path)
        self._lock = threading.Lock()
        # The tables of the first read: the schema the DSD announces.
        self._files: dict[str, tuple[list[str], list[tuple]]] = {}

    def _refused(self, key: str, exc: Refused) -> DriverError:
        """The DriverError for people: the datasource, the key, why, and the fix."""
        text = f"datasource {self.name}: '{key}' {self.config.get(key)}: {exc}"
        if isinstance(exc, Outside):
            text += (f"; put the file in one of the folders of {OPTION} "
                     f"({self.allowed.describe()}), or add its folder to {OPTION} in the "
                     "config of the DSD node (which decides) and of the API nodes (which "
                     "check a new datasource first)")
        return DriverError(text)

    def schema(self) -> dict[str, list[str]]:
        return {t: cols for t, (cols, _) in self._files.items()}

    def probe(self) -> dict[str, list[str]]:
        return {t: cols for t, (cols, _) in self._read().items()} if self.path else {}

    def start(self) -> None:
        try:  # the log's folder, reached inside the allowed ones: say so now, not later
            self.allowed.check_folder_of(self.action_log)
        except Refused as exc:
            raise self._refused("action_log", exc) from None
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

        Reached from the allowed folder without following a link (confine.py);
        checked by the engine's own row check, so a file that reads here is one
        every PE can apply; a FIFO or a device is refused, never read (a read
        would block the thread), and so is a file over MAX_FILE_BYTES.
        """
        tables: dict[str, tuple[list[str], list[tuple]]] = {}
        try:
            with self.allowed.entries(self.path) as (folder_fd, names, is_folder):
                for name in names:
                    f = Path(name)
                    if f.suffix not in SUFFIXES:
                        if is_folder:
                            continue  # other files may live in a folder of tables
                        raise DriverError(f"datasource {self.name}: 'path' {self.path}: "
                                          "name a .json, .yaml or .csv file, or a folder "
                                          "of them")
                    shown = os.path.join(self.path, name) if is_folder else self.path
                    try:
                        text = self._read_file(folder_fd, name, shown)
                        for table, cols, rows in self._parse(f, text):
                            tables[table] = (cols, check_rows(self.name, table, rows,
                                                              len(cols)))
                    except (OSError, ValueError, TypeError, AttributeError,
                            yaml.YAMLError, PolicyError) as exc:
                        raise DriverError(f"datasource {self.name}: cannot read {shown}: "
                                          f"{exc}") from None
        except Refused as exc:
            raise self._refused("path", exc) from None
        except OSError as exc:  # listing the folder
            raise DriverError(f"datasource {self.name}: cannot list {self.path}: "
                              f"{exc.strerror}") from None
        return tables

    def _read_file(self, folder_fd: int, name: str, shown: str) -> str:
        """The file's text, opened literally in its folder and checked on the open
        descriptor (confine.open_in), so what is checked is what is read."""
        fd = open_in(folder_fd, name, os.O_RDONLY, 0, shown)
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise DriverError(f"datasource {self.name}: {shown} is {size} bytes; "
                                  f"the limit is {MAX_FILE_BYTES}")
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # it grew while being read
            raise DriverError(f"datasource {self.name}: {shown} is over {MAX_FILE_BYTES} "
                              "bytes")
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
        # The arguments are data: one JSON value in the line, never given to a shell
        # or a format of any kind.
        data = (line + "\n").encode()
        with self._lock:
            try:
                fd = self.allowed.open_file(self.action_log,
                                            os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except Refused as exc:
                raise self._refused("action_log", exc) from None
            try:
                written = os.write(fd, data)
            finally:
                os.close(fd)
            if written != len(data):  # a full disk: say so rather than log half a line
                raise DriverError(f"datasource {self.name}: action_log {self.action_log}: "
                                  f"{written} of {len(data)} bytes written")


def _num(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
