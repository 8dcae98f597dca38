"""Tables of rows with support counts and lazily built hash indexes."""

from __future__ import annotations

from operator import itemgetter

from .analysis import TableKey

Row = tuple


class Table:
    """One table: visible rows with their support counts, base rows, indexes.

    ``rows`` maps a row to its number of derivations (plus one if it is a
    base row); only rows with a positive count are stored. Indexes map the
    values of some columns to the set of rows that have them; each is built
    the first time a join asks for it and maintained from then on.
    """

    __slots__ = ("base", "indexes", "key", "rows")

    def __init__(self, key: TableKey) -> None:
        self.key = key
        self.rows: dict[Row, int] = {}
        self.base: set[Row] = set()
        self.indexes: dict[tuple[int, ...], tuple[itemgetter, dict]] = {}

    def index(self, cols: tuple[int, ...]) -> dict:
        entry = self.indexes.get(cols)
        if entry is None:
            entry = self.indexes[cols] = (itemgetter(*cols), {})
            _index_rows(*entry, self.rows)
        return entry[1]

    def show(self, rows: list[Row]) -> None:
        """Make rows visible in the indexes (the caller updated ``rows``)."""
        for cols, (get, index) in list(self.indexes.items()):
            try:
                _index_rows(get, index, rows)
            except IndexError:
                # Rows narrower than an index left from a use of the table at
                # another width (its rules are gone): the index is a cache of
                # ``rows``; drop it, the next join that wants it builds it anew.
                del self.indexes[cols]

    def hide(self, rows: list[Row]) -> None:
        for get, index in self.indexes.values():
            for row in rows:
                k = get(row)
                bucket = index.get(k)
                if bucket is not None:
                    bucket.discard(row)
                    if not bucket:
                        del index[k]


class Database:
    """All tables by key; tables appear on first mention and are never replaced."""

    def __init__(self) -> None:
        self.tables: dict[TableKey, Table] = {}

    def table(self, key: TableKey) -> Table:
        table = self.tables.get(key)
        if table is None:
            table = self.tables[key] = Table(key)
        return table

    def rows(self, key: TableKey) -> dict[Row, int]:
        return self.table(key).rows

    def index(self, key: TableKey, cols: tuple[int, ...]) -> dict:
        return self.table(key).index(cols)


def _index_rows(get: itemgetter, index: dict, rows) -> None:
    for row in rows:
        k = get(row)
        bucket = index.get(k)
        if bucket is None:
            index[k] = {row}
        else:
            bucket.add(row)
