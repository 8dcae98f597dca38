"""The ``push`` driver: tables whose rows are pushed through the API.

Config: ``{"tables": {"TABLE": ["col", ...]}}``.  ``PUT /v1/data-sources/NAME/
tables/TABLE/rows`` replaces a table with a list of rows (each a list in column
order, or an object by column name).  The API node checks the rows
(``normalize_rows``) and stores them in the database with a new version; the
DSD publishes a table whose stored version is ahead of what it published (at
the API's word, and by a poll), so a push is taken while no DSD or no broker
answers, and a DSD that restarts on any node publishes the same rows again.
"""

from __future__ import annotations

from typing import Any

from congress_ha.datasources.base import Driver, DriverError


class PushDriver(Driver):
    description = "Tables filled by PUT .../tables/TABLE/rows; rows survive a DSD restart."
    config_help = {"tables": "object: table name -> list of column names"}
    actions: list[str] = []
    accepts_push = True
    persists_rows = True

    def __init__(self, name, config, publish, settings=None):
        super().__init__(name, config, publish, settings)
        self.tables = self.parse_tables(name, self.config)
        self.persisted: dict[str, list] = {}
        self.versions: dict[str, int] = {}  # table -> the stored version published

    @staticmethod
    def parse_tables(name: str, config: dict) -> dict[str, list[str]]:
        tables = config.get("tables")
        if not isinstance(tables, dict) or not tables:
            raise DriverError(f"datasource {name}: push driver needs config 'tables': "
                              '{"TABLE": ["col", ...]} with at least one table')
        for table, cols in tables.items():
            if not isinstance(table, str) or not table.isidentifier():
                raise DriverError(f"datasource {name}: table name {table!r} must be an "
                                  "identifier")
            if (not isinstance(cols, list) or not cols
                    or not all(isinstance(c, str) and c.isidentifier() for c in cols)
                    or len(set(cols)) != len(cols)):
                raise DriverError(f"datasource {name}: table {table}: columns must be a "
                                  "non-empty list of distinct identifiers")
        return {t: list(c) for t, c in tables.items()}

    def restore(self, stored: dict[str, tuple[list, int]]) -> None:
        """The stored tables (rows, version), published by ``start``."""
        self.persisted = {t: rows for t, (rows, _) in stored.items()}
        self.versions = {t: v for t, (_, v) in stored.items()}

    def start(self) -> None:
        for table in self.tables:
            self.publish(table, [tuple(r) for r in self.persisted.get(table, [])])

    def publish_stored(self, table: str, rows: list, version: int) -> bool:
        """Publish the stored ``version`` of ``table`` if it is newer than ours."""
        if table not in self.tables or version <= self.versions.get(table, 0):
            return False
        self.publish(table, [tuple(r) for r in rows])
        self.versions[table] = version
        return True

    def normalize(self, table: str, rows: Any) -> list[tuple]:
        return normalize_rows(self.name, self.tables, table, rows)


def normalize_rows(name: str, tables: dict[str, list[str]], table: str,
                   rows: Any) -> list[tuple]:
    """Rows as tuples in column order, or DriverError naming the bad row."""
    if table not in tables:
        raise DriverError(f"datasource {name} has no table {table!r}; its tables: "
                          f"{', '.join(sorted(tables))}")
    cols = tables[table]
    if not isinstance(rows, list):
        raise DriverError("rows must be a JSON list of rows")
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            unknown = set(row) - set(cols)
            missing = [c for c in cols if c not in row]
            if unknown or missing:
                raise DriverError(f"row {i}: columns of {table} are {cols}; "
                                  f"unknown {sorted(unknown)}, missing {missing}")
            row = [row[c] for c in cols]
        if not isinstance(row, list) or len(row) != len(cols):
            raise DriverError(f"row {i}: expected a list of {len(cols)} values "
                              f"({', '.join(cols)}) or an object by column name")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise DriverError(f"row {i}: value {v!r} is not a number or a string")
        out.append(tuple(row))
    return out
