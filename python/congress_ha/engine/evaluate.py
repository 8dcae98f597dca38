"""Incremental maintenance of every derived table.

Tables outside recursion keep a support count per row (counting algorithm):
a change of an input table is pushed through the rules that read it as
count deltas for their heads, and each head is settled once, in dependency
order, when nothing below it is left to settle. Tables in a recursive
component (kind ``recursive`` only) are sets maintained with DRed: delete
whatever might have lost support, re-derive what still holds, then insert
semi-naively. Work is proportional to the rows a change touches.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from .analysis import EXEC_NS, Resolved, TableKey, components, edges_of, is_cyclic
from .codegen import Compiled, past_deadline
from .errors import Overrun
from .storage import Database, Row, Table

_NONE: frozenset = frozenset()


class _Shadow:
    """A database view in which some tables are fresh, for recomputing them aside."""

    def __init__(self, real: Database, keys: Iterable[TableKey]) -> None:
        self.real = real
        self.tables = {k: Table(k) for k in keys}

    def rows(self, key: TableKey) -> dict[Row, int]:
        table = self.tables.get(key)
        return table.rows if table is not None else self.real.rows(key)

    def index(self, key: TableKey, cols: tuple[int, ...]) -> dict:
        table = self.tables.get(key)
        return table.index(cols) if table is not None else self.real.index(key, cols)


class Evaluator:
    """Rules, their dependency structure, and the maintenance of derived rows."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rules: dict[int, Compiled] = {}
        self.by_head: dict[TableKey, list[Compiled]] = {}
        self.consumers: dict[TableKey, list[tuple[Compiled, int]]] = {}
        self.rank: dict[TableKey, int] = {}
        self.scc_of: dict[TableKey, frozenset[TableKey]] = {}
        self.pending: dict[TableKey, dict[Row, int]] = {}
        self._queue: list[tuple[int, TableKey]] = []
        self.risen: list[tuple[TableKey, Row]] = []  # execute rows that became true

    # -- structure -----------------------------------------------------------
    def _restructure(self) -> None:
        graph = edges_of(c.rule for c in self.rules.values())
        self.rank.clear()
        self.scc_of.clear()
        for n, comp in enumerate(components(graph)):
            cyclic = is_cyclic(comp, graph)
            for key in comp:
                self.rank[key] = n
                if cyclic:
                    self.scc_of[key] = frozenset(comp)

    def _link(self, c: Compiled) -> None:
        self.by_head.setdefault(c.head_key, []).append(c)
        for i, lit in enumerate(c.rule.body):
            if lit.key is not None:
                self.consumers.setdefault(lit.key, []).append((c, i))

    def _unlink(self, c: Compiled) -> None:
        self.by_head[c.head_key].remove(c)
        for lit in c.rule.body:
            if lit.key is not None:
                self.consumers[lit.key] = [e for e in self.consumers[lit.key] if e[0] is not c]
                if not self.consumers[lit.key]:
                    # No plan reads it any more: its indexes go with the last one, so
                    # a later use at another width starts clean.
                    self.db.table(lit.key).indexes.clear()

    # -- rule changes --------------------------------------------------------
    def add_rule(self, uid: int, rule: Resolved) -> None:
        c = Compiled(rule)
        before = self.scc_of.get(c.head_key)
        self.rules[uid] = c
        self._link(c)
        self._restructure()
        after = self.scc_of.get(c.head_key)
        if before is None and after is None:
            self._push(c.head_key, c.plan(None), None, 1, _NONE, _NONE)
        else:
            self._recompute(set(before or ()) | set(after or ()) | {c.head_key})
        self.run()

    def remove_rule(self, uid: int) -> None:
        c = self.rules.pop(uid)
        before = self.scc_of.get(c.head_key)
        if before is None:
            self._push(c.head_key, c.plan(None), None, -1, _NONE, _NONE)
        self._unlink(c)
        self._restructure()
        if before is not None:
            self._recompute(set(before))
        self.run()

    # -- data changes --------------------------------------------------------
    def change_base(self, key: TableKey, added: Iterable[Row], removed: Iterable[Row]) -> None:
        table = self.db.table(key)
        base = table.base
        add_set = set(added)
        gone = [r for r in set(removed) if r in base and r not in add_set]
        new = [r for r in add_set if r not in base]
        base.difference_update(gone)
        base.update(new)
        scc = self.scc_of.get(key)
        if scc is not None:
            self._dred(scc, [], _NONE, _NONE, _NONE, _NONE, {key: new}, {key: gone})
        else:
            rows = table.rows
            shown, hidden = [], []
            for r in new:
                n = rows.get(r, 0)
                rows[r] = n + 1
                if n == 0:
                    shown.append(r)
            for r in gone:
                n = rows[r]
                if n == 1:
                    del rows[r]
                    hidden.append(r)
                else:
                    rows[r] = n - 1
            table.show(shown)
            table.hide(hidden)
            self._emit(key, shown, hidden)
        self.run()

    # -- propagation ---------------------------------------------------------
    def _push(self, head: TableKey, plan, rows, sign: int, xa, xr) -> None:
        out = self.pending.get(head)
        if out is None:
            out = self.pending[head] = {}
            heapq.heappush(self._queue, (self.rank.get(head, 0), head))
        plan(rows, sign, out, self.db, xa, xr)

    def _emit(self, key: TableKey, added: list[Row], removed: list[Row],
              skip: frozenset[TableKey] | set[TableKey] = _NONE) -> None:
        """Push a visible change of ``key`` (already applied) to the rules that read it."""
        if not added and not removed:
            return
        if key[0] == EXEC_NS:
            self.risen.extend((key, r) for r in added)
        xa, xr = set(added), set(removed)
        recursive: dict[frozenset[TableKey], list[tuple[Compiled, int]]] = {}
        for c, i in self.consumers.get(key, ()):
            head = c.head_key
            if head in skip:
                continue
            scc = self.scc_of.get(head)
            if scc is not None:
                recursive.setdefault(scc, []).append((c, i))
                continue
            plan = c.plan(i)
            sign = -1 if c.rule.body[i].kind == "neg" else 1
            if added:
                self._push(head, plan, added, sign, xa, xr)
            if removed:
                self._push(head, plan, removed, -sign, xa, xr)
        for scc, entries in recursive.items():
            self._dred(scc, entries, added, removed, xa, xr, {}, {})

    def run(self) -> None:
        """Settle pending count deltas, lowest rank first, so each head settles once."""
        while self._queue:
            if past_deadline():
                raise Overrun("the evaluation ran past its deadline")
            _, key = heapq.heappop(self._queue)
            delta = self.pending.pop(key, None)
            if not delta:
                continue
            table = self.db.table(key)
            rows = table.rows
            shown, hidden = [], []
            for r, d in delta.items():
                if d == 0:
                    continue
                n = rows.get(r, 0)
                m = n + d
                if m > 0:
                    rows[r] = m
                    if n == 0:
                        shown.append(r)
                elif m == 0:
                    del rows[r]
                    hidden.append(r)
                else:
                    raise RuntimeError(f"negative support for {key} {r}: engine bug")
            table.show(shown)
            table.hide(hidden)
            self._emit(key, shown, hidden)

    # -- recursion -----------------------------------------------------------
    def _derive(self, scc: frozenset[TableKey], frontier: dict[TableKey, list[Row]],
                db, inserted: dict[TableKey, set[Row]]) -> None:
        """Semi-naive closure: add whatever the frontier rows derive inside ``scc``."""
        while frontier:
            nxt: dict[TableKey, list[Row]] = {}
            for key, rows in frontier.items():
                for c, i in self.consumers.get(key, ()):
                    if c.head_key not in scc or c.rule.body[i].kind != "pos":
                        continue
                    out: dict[Row, int] = {}
                    c.plan(i)(rows, 1, out, db, _NONE, _NONE)
                    self._insert(c.head_key, out, db, inserted, nxt)
            frontier = nxt

    @staticmethod
    def _insert(key: TableKey, candidates: Iterable[Row], db, inserted, frontier) -> None:
        rows = db.rows(key)
        new = [r for r in candidates if r not in rows]
        if not new:
            return
        for r in new:
            rows[r] = 1
        table = db.tables[key] if isinstance(db, _Shadow) else db.table(key)
        table.show(new)
        inserted.setdefault(key, set()).update(new)
        frontier.setdefault(key, []).extend(new)

    def _dred(self, scc, entries, added, removed, xa, xr,
              base_add: dict[TableKey, list[Row]], base_rm: dict[TableKey, list[Row]]) -> None:
        db = self.db
        # 1. over-delete: everything that may have used a vanished row
        maybe: dict[TableKey, set[Row]] = {}
        for c, i in entries:
            seeds = added if c.rule.body[i].kind == "neg" else removed
            if seeds:
                out: dict[Row, int] = {}
                c.plan(i)(seeds, 1, out, db, xa, xr)
                maybe.setdefault(c.head_key, set()).update(out)
        for key, rows in base_rm.items():
            maybe.setdefault(key, set()).update(rows)
        deleted: dict[TableKey, set[Row]] = {}
        frontier: dict[TableKey, list[Row]] = {}
        for key, cands in maybe.items():
            table = db.table(key)
            new = [r for r in cands if r in table.rows and r not in table.base]
            if new:
                deleted.setdefault(key, set()).update(new)
                frontier[key] = new
        while frontier:
            nxt: dict[TableKey, list[Row]] = {}
            for key, rows in frontier.items():
                for c, i in self.consumers.get(key, ()):
                    if c.head_key not in scc or c.rule.body[i].kind != "pos":
                        continue
                    out = {}
                    c.plan(i)(rows, 1, out, db, _NONE, _NONE)
                    table = db.table(c.head_key)
                    gone = deleted.setdefault(c.head_key, set())
                    new = [r for r in out if r in table.rows and r not in gone
                           and r not in table.base]
                    if new:
                        gone.update(new)
                        nxt.setdefault(c.head_key, []).extend(new)
            frontier = nxt
        for key, rows in deleted.items():
            table = db.table(key)
            for r in rows:
                del table.rows[r]
            table.hide(list(rows))
        # 2. re-derive what still has a derivation, 3. insert what is new
        inserted: dict[TableKey, set[Row]] = {}
        frontier = {}
        for key, rows in deleted.items():
            for c in self.by_head.get(key, ()):
                out = {}
                c.plan("head")(rows, 1, out, db, _NONE, _NONE)
                self._insert(key, out, db, inserted, frontier)
        for c, i in entries:
            seeds = removed if c.rule.body[i].kind == "neg" else added
            if seeds:
                out = {}
                # The new state for every other literal (no xa/xr): a set is
                # maintained here, not counts, so a derivation found twice is one,
                # and one found against the old state (``p(x), not p(x)`` seeing
                # p before its new row) would be wrong.
                c.plan(i)(seeds, 1, out, db, _NONE, _NONE)
                self._insert(c.head_key, out, db, inserted, frontier)
        for key, rows in base_add.items():
            self._insert(key, rows, db, inserted, frontier)
        self._derive(scc, frontier, db, inserted)
        changes = []
        for key in sorted(set(deleted) | set(inserted)):
            gone, new = deleted.get(key, set()), inserted.get(key, set())
            changes.append((key, sorted(new - gone, key=repr), sorted(gone - new, key=repr)))
        self._emit_all(changes, scc)

    def _emit_all(self, changes: list[tuple[TableKey, list[Row], list[Row]]],
                  skip: frozenset[TableKey] | set[TableKey]) -> None:
        """Emit several tables' changes as a sequence of one-table transitions.

        The changes are already applied; rules reading two of these tables
        must see them change one at a time, or a derivation using two new
        rows would be counted twice. So revert, then re-apply one by one.
        """
        changes = [c for c in changes if c[1] or c[2]]
        several = len(changes) > 1
        if several:
            for key, added, removed in changes:
                self._swap(key, added, removed)  # back to the old state
        for key, added, removed in changes:
            if several:
                self._swap(key, removed, added)  # forward, one table at a time
            self._emit(key, added, removed, skip)

    def _swap(self, key: TableKey, drop: list[Row], keep: list[Row]) -> None:
        """Take ``drop`` out of a table's rows and indexes and put ``keep`` in."""
        table = self.db.table(key)
        for r in drop:
            del table.rows[r]
        for r in keep:
            table.rows[r] = 1
        table.hide(drop)
        table.show(keep)

    def _recompute(self, keys: set[TableKey]) -> None:
        """Recompute some tables from scratch (after a change of recursion structure)."""
        groups: dict[int, list[TableKey]] = {}
        for key in keys:
            groups.setdefault(self.rank.get(key, 0), []).append(key)
        for rank in sorted(groups):
            group = sorted(groups[rank])
            scc = self.scc_of.get(group[0])
            shadow = _Shadow(self.db, group)
            counts: dict[TableKey, dict[Row, int]] = {}
            if scc is not None:
                inserted: dict[TableKey, set[Row]] = {}
                frontier: dict[TableKey, list[Row]] = {}
                for key in group:
                    self._insert(key, self.db.table(key).base, shadow, inserted, frontier)
                    for c in self.by_head.get(key, ()):
                        out: dict[Row, int] = {}
                        c.plan(None)(None, 1, out, shadow, _NONE, _NONE)
                        self._insert(key, out, shadow, inserted, frontier)
                self._derive(scc, frontier, shadow, inserted)
                for key in group:
                    counts[key] = shadow.tables[key].rows
            else:
                for key in group:
                    out = {r: 1 for r in self.db.table(key).base}
                    for c in self.by_head.get(key, ()):
                        c.plan(None)(None, 1, out, self.db, _NONE, _NONE)
                    counts[key] = {r: n for r, n in out.items() if n > 0}
            # Apply and emit one table at a time (see _emit_all for why).
            for key in group:
                table = self.db.table(key)
                new = counts[key]
                added = [r for r in new if r not in table.rows]
                removed = [r for r in table.rows if r not in new]
                table.hide(removed)
                table.rows.clear()
                table.rows.update(new)
                table.show(added)
                self._emit(key, added, removed, keys)
