"""The public facade of the policy engine: policies, rules, data, queries, actions.

Pure: no I/O, no clock, no threads. Callers feed it rules and rows and get
back the actions that newly fire; the same calls in the same order give the
same results, including the action ids, on every replica.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .analysis import EXEC_NS, Context, Resolved, TableKey, check_recursion, resolve
from .ast import Atom, Const, Float, Literal, Rule, Var, typed_row
from .builtins import BUILTINS, CLOCK, CLOCK_COLUMNS
from .codegen import Compiled, deadline
from .errors import PolicyError
from .evaluate import Evaluator
from .parser import parse_atom, parse_rule, parse_sequence
from .storage import Database, Row
from .trace import explain

KINDS = ("nonrecursive", "recursive", "action")
_SCALARS = {int, float, str, Float}


@dataclass(frozen=True)
class Action:
    """An ``execute[datasource:action(args)]`` head row that became true."""

    action_id: str
    datasource: str
    action: str
    args: tuple
    occurrence: int


def action_id(datasource: str, action: str, args: tuple, occurrence: int) -> str:
    """sha256 over (datasource, action, canonical JSON of args, occurrence), hex[:32]."""
    canonical = json.dumps(list(args), separators=(",", ":"), ensure_ascii=False)
    payload = "\x1f".join([datasource, action, canonical, str(occurrence)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass
class _RuleEntry:
    rule_id: str
    resolved: Resolved
    uid: int


@dataclass
class _Policy:
    name: str
    kind: str
    abbreviation: str
    description: str
    rules: dict[str, _RuleEntry] = field(default_factory=dict)


def check_rows(datasource: str, table: str, rows: Iterable, arity: int | None) -> list[Row]:
    """``rows`` as tuples, or PolicyError: one width (``arity`` if given), scalar values.

    The one check of data for the engine; the DSD runs it too on every table a
    driver publishes, so what the DSD sends, every PE can take.
    """
    try:
        out = [tuple(r) for r in rows]
    except TypeError:
        raise PolicyError(f"rows for '{datasource}:{table}' must be lists of values") from None
    if not out:
        return out
    widths = {len(r) for r in out}
    if arity is not None:
        widths.add(arity)
    if len(widths) > 1:
        raise PolicyError(f"rows for '{datasource}:{table}' must all have "
                          f"{arity if arity is not None else len(out[0])} columns")
    for r in out:
        for v in r:
            if type(v) not in _SCALARS:
                raise PolicyError(f"row {r!r} for '{datasource}:{table}' has a value of type "
                                  f"{type(v).__name__}; values must be int, float or str")
    return out


class Engine:
    """Congress-style Datalog policies over datasource tables, maintained incrementally."""

    def __init__(self) -> None:
        self._db = Database()
        self._ev = Evaluator(self._db)
        self._policies: dict[str, _Policy] = {}
        # builtin:now, the clock that now(x) reads, is known before its rows come.
        self._schemas: dict[str, dict[str, list[str]]] = {CLOCK[0]: {CLOCK[1]: CLOCK_COLUMNS}}
        self._arity_refs: dict[TableKey, Counter[int]] = {}
        self._hidden: dict[TableKey, list[int]] = {}  # key -> [uid, references]
        self._occurrences: dict[tuple[str, Row], int] = {}  # per execute head row
        self._uids = 0
        self._simulating = False

    # -- rebuilding ----------------------------------------------------------
    def successor(self) -> Engine:
        """A new, empty engine that continues this one's action occurrence counts.

        For a rebuild: load it inside ``quiet()``, so heads already true here are
        not counted (or sent) again, and later derivations get the same action
        ids that this engine would have given them.
        """
        new = Engine()
        new._occurrences = dict(self._occurrences)
        return new

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Changes made inside derive no actions (a rebuild replays known state)."""
        self._simulating = True
        try:
            yield
        finally:
            self._ev.risen.clear()
            self._simulating = False

    def trial(self, policy: str, rules: list[str], seconds: float | None,
              create_kind: str | None = None) -> None:
        """Evaluate adding ``rules`` (to a new policy of ``create_kind``, if given) and
        take them out again, deriving no actions: the cost of a change, measured
        before it is stored. Past ``seconds``: Overrun, and this engine must be
        replaced; PolicyError if a rule is refused."""
        with self.quiet(), deadline(seconds):
            if create_kind is not None:
                self.create_policy(policy, create_kind)
            try:
                added = []
                for i, text in enumerate(rules):
                    rule_id, _ = self.insert_rule(policy, text, rule_id=f"#trial{i}")
                    if rule_id == f"#trial{i}":
                        added.append(rule_id)
            finally:
                if create_kind is not None:
                    self.delete_policy(policy)
                else:
                    for rule_id in reversed(added):
                        self.delete_rule(policy, rule_id)

    # -- policies ------------------------------------------------------------
    def create_policy(self, name: str, kind: str = "nonrecursive",
                      abbreviation: str | None = None, description: str = "") -> None:
        if (not name or not name.isascii()
                or not name.replace("_", "a").replace(".", "a").isalnum()):
            raise PolicyError(f"invalid policy name {name!r}: use letters, digits, '_' and '.'")
        if name == "builtin":
            raise PolicyError("'builtin' is reserved for builtin tables")
        if name in self._policies:
            raise PolicyError(f"policy '{name}' already exists")
        if kind not in KINDS:
            raise PolicyError(f"unknown policy kind {kind!r}: use one of {', '.join(KINDS)}")
        self._policies[name] = _Policy(name, kind, abbreviation or name[:5], description)

    def delete_policy(self, name: str) -> list[Action]:
        """Delete a policy, its rules and its rows; returns actions that newly fire."""
        policy = self._get(name)
        actions = []
        for rule_id in reversed(list(policy.rules)):
            actions += self.delete_rule(name, rule_id)
        for key, table in list(self._db.tables.items()):
            if key[0] == name and table.base:
                self._ev.change_base(key, (), list(table.base))
        del self._policies[name]
        return actions + self._actions()

    def policies(self) -> list[str]:
        return list(self._policies)

    def policy_kind(self, name: str) -> str:
        return self._get(name).kind

    def _get(self, name: str) -> _Policy:
        policy = self._policies.get(name)
        if policy is None:
            raise PolicyError(f"no such policy '{name}'")
        return policy

    # -- rules ---------------------------------------------------------------
    def _arity(self, key: TableKey) -> int | None:
        columns = self._schemas.get(key[0], {}).get(key[1])
        if columns is not None:
            return len(columns)
        refs = self._arity_refs.get(key)
        if refs:
            return next(iter(refs))
        table = self._db.tables.get(key)
        if table is not None and table.rows:
            return len(next(iter(table.rows)))
        return None

    def _resolve(self, policy: str, rule: Rule) -> Resolved:
        ctx = Context(policy, lambda k: self._schemas.get(k[0], {}).get(k[1]), self._arity)
        resolved = resolve(rule, ctx)
        existing = [e.resolved for p in self._policies.values() for e in p.rules.values()]
        existing += [h for e in existing for h in e.hidden]
        check_recursion(resolved, existing, lambda name: self._policies[name].kind
                        if name in self._policies else "nonrecursive")
        return resolved

    def check_rule(self, policy: str, text: str) -> list[Rule]:
        """Parse and validate a rule in the context of ``policy`` without adding it."""
        self._get(policy)
        rule = parse_rule(text)
        resolved = self._resolve(policy, rule)
        for r in (resolved, *resolved.hidden):
            Compiled(r)  # exactly the plans a PE will run; PolicyError if one fails
        return [rule]

    def same_rule(self, policy: str, text: str) -> str | None:
        """The id of the rule of ``policy`` equal to ``text`` (canonical form), if any."""
        canonical = str(parse_rule(text))
        for entry in self._get(policy).rules.values():
            if str(entry.resolved.rule) == canonical:
                return entry.rule_id
        return None

    def insert_rule(self, policy: str, text: str,
                    rule_id: str | None = None) -> tuple[str, list[Action]]:
        """Add a rule (or fact); returns its id and the actions that newly fire.

        Inserting a rule the policy already has (same canonical text) changes
        nothing and returns the existing id.
        """
        pol = self._get(policy)
        rule = parse_rule(text)
        resolved = self._resolve(policy, rule)
        canonical = str(rule)
        for entry in pol.rules.values():
            if str(entry.resolved.rule) == canonical:
                return entry.rule_id, []
        if rule_id is None:
            digest = hashlib.sha256(f"{policy}\x1f{canonical}".encode()).digest()
            rule_id = str(uuid.UUID(bytes=digest[:16]))
        if rule_id in pol.rules:
            raise PolicyError(f"rule id '{rule_id}' is already used in policy '{policy}'")
        for hidden in resolved.hidden:
            entry_ = self._hidden.get(hidden.head_key)
            if entry_ is None:
                self._uids += 1
                self._hidden[hidden.head_key] = [self._uids, 1]
                self._ev.add_rule(self._uids, hidden)
            else:
                entry_[1] += 1
        self._uids += 1
        self._ev.add_rule(self._uids, resolved)
        pol.rules[rule_id] = _RuleEntry(rule_id, resolved, self._uids)
        self._count_refs(resolved, 1)
        return rule_id, self._actions()

    def delete_rule(self, policy: str, rule_id: str) -> list[Action]:
        pol = self._get(policy)
        entry = pol.rules.pop(rule_id, None)
        if entry is None:
            raise PolicyError(f"no rule with id '{rule_id}' in policy '{policy}'")
        self._ev.remove_rule(entry.uid)
        for hidden in entry.resolved.hidden:
            ref = self._hidden[hidden.head_key]
            ref[1] -= 1
            if ref[1] == 0:
                del self._hidden[hidden.head_key]
                self._ev.remove_rule(ref[0])
        self._count_refs(entry.resolved, -1)
        return self._actions()

    def rules(self, policy: str) -> list[tuple[str, str]]:
        return [(e.rule_id, str(e.resolved.rule)) for e in self._get(policy).rules.values()]

    def _count_refs(self, resolved: Resolved, step: int) -> None:
        refs = [(resolved.head_key, len(resolved.head_args))]
        refs += [(lit.key, len(lit.args)) for lit in resolved.body if lit.key is not None]
        for key, width in refs:
            if key[0] == EXEC_NS or key[1].startswith("#"):
                continue
            counter = self._arity_refs.setdefault(key, Counter())
            counter[width] += step
            if counter[width] <= 0:
                del counter[width]

    # -- data ----------------------------------------------------------------
    def set_schema(self, datasource: str, tables: dict[str, list[str]]) -> None:
        """Declare a datasource's tables and column names (for column references)."""
        for table, columns in tables.items():
            if not all(isinstance(c, str) for c in columns):
                raise PolicyError(f"columns of table '{datasource}:{table}' must be names")
            key = (datasource, table)
            refs = self._arity_refs.get(key)
            if refs and any(width != len(columns) for width in refs):
                raise PolicyError(f"schema of '{datasource}:{table}' has {len(columns)} columns "
                                  f"but rules use it with {min(refs)}")
            rows = self._db.tables.get(key)
            if rows is not None and rows.rows and len(next(iter(rows.rows))) != len(columns):
                raise PolicyError(f"schema of '{datasource}:{table}' has {len(columns)} columns "
                                  "but its rows have a different number")
        self._schemas[datasource] = {t: list(c) for t, c in tables.items()}

    def check_data(self, datasource: str, schema: dict[str, list[str]] | None,
                   tables: dict[str, Iterable]) -> None:
        """Raise PolicyError unless ``tables`` (and ``schema``, if given) can be applied.

        Changes nothing: a PE checks a whole snapshot or delta with this before
        it touches its replica or its engine, so a bad one leaves both as they were.
        """
        if schema is not None:
            for table, columns in schema.items():
                if not isinstance(columns, list | tuple) or not all(
                        isinstance(c, str) for c in columns):
                    raise PolicyError(f"columns of table '{datasource}:{table}' must be names")
                refs = self._arity_refs.get((datasource, table))
                if refs and any(width != len(columns) for width in refs):
                    raise PolicyError(f"schema of '{datasource}:{table}' has {len(columns)} "
                                      f"columns but rules use it with {min(refs)}")
        for table, rows in tables.items():
            width = len(schema[table]) if schema is not None and table in schema else None
            self._rows(datasource, table, rows, width)

    def _rows(self, datasource: str, table: str, rows: Iterable,
              arity: int | None = None) -> list[Row]:
        if arity is None:
            arity = self._arity((datasource, table))
        return [typed_row(r) for r in check_rows(datasource, table, rows, arity)]

    def apply_delta(self, datasource: str, table: str, added: Iterable[tuple],
                    removed: Iterable[tuple]) -> list[Action]:
        """Add and remove rows of a table (removals first); returns actions that fire."""
        add = self._rows(datasource, table, added)
        rm = self._rows(datasource, table, removed)
        self._ev.change_base((datasource, table), add, rm)
        return self._actions()

    def replace_table(self, datasource: str, table: str, rows: Iterable[tuple]) -> list[Action]:
        new = set(self._rows(datasource, table, rows))
        current = self._db.table((datasource, table)).base
        return self.apply_delta(datasource, table, new - current, current - new)

    # -- reading -------------------------------------------------------------
    def _namespace(self, name: str) -> None:
        if name not in self._policies and name not in self._schemas and not any(
                k[0] == name for k in self._db.tables):
            raise PolicyError(f"no such policy or datasource '{name}'")

    def select(self, policy: str, table: str) -> set[tuple]:
        self._namespace(policy)
        t = self._db.tables.get((policy, table))
        return set(t.rows) if t is not None else set()

    def tables(self, policy: str) -> list[str]:
        self._namespace(policy)
        names = set(self._schemas.get(policy, {}))
        names |= {k[1] for k, t in self._db.tables.items() if k[0] == policy and t.rows}
        pol = self._policies.get(policy)
        if pol is not None:
            # As Congress's tablenames(): heads, and the body tables of this policy
            # (a table only read, never defined, lists and answers [] rows).
            for e in pol.rules.values():
                names.add(e.resolved.head_key[1])
                names |= {lit.key[1] for lit in e.resolved.body
                          if lit.key is not None and lit.key[0] == policy}
        return sorted(n for n in names if not n.startswith("#"))

    def query(self, policy: str, text: str) -> set[tuple]:
        """Rows of the atom's table that match it, e.g. ``p(x, 1)`` -> rows of p."""
        self._namespace(policy)
        atom = parse_atom(text)
        return self._match(policy, atom, text)

    def _match(self, policy: str, atom: Atom, text: str) -> set[tuple]:
        if atom.modal or atom.sign:
            raise PolicyError("a query is a plain atom such as p(x, 1)", text, 1, 1, "query")
        if atom.namespace is None and atom.table in BUILTINS:
            raise PolicyError("builtins cannot be queried", text, 1, 1, "query")
        ctx = Context(policy, lambda k: self._schemas.get(k[0], {}).get(k[1]), self._arity)
        probe = resolve(Rule(_PROBE_HEAD, ((_lit(atom)),), text), ctx)
        lit = probe.body[0]
        assert lit.key is not None
        table = self._db.tables.get(lit.key)
        if table is None:
            return set()
        consts = [(j, t.value) for j, t in enumerate(lit.args) if isinstance(t, Const)]
        if consts:
            cols = tuple(j for j, _ in consts)
            key = consts[0][1] if len(consts) == 1 else tuple(v for _, v in consts)
            candidates: Iterable[Row] = table.index(cols).get(key, ())
        else:
            candidates = table.rows
        result = set()
        for row in candidates:
            seen: dict[str, object] = {}
            ok = True
            for j, term in enumerate(lit.args):
                if isinstance(term, Var) and seen.setdefault(term.name, row[j]) != row[j]:
                    ok = False
                    break
            if ok:
                result.add(row)
        return result

    def trace(self, policy: str, table: str) -> tuple[set[tuple], list[str]]:
        """Rows of a table and proof lines saying why each holds."""
        self._namespace(policy)
        return explain(self._ev, policy, (policy, table))

    # -- simulate ------------------------------------------------------------
    def simulate(self, policy: str, query: str, sequence: str,
                 action_policy: str | None = None,
                 seconds: float | None = None) -> set[tuple]:
        """Answer ``query`` as if ``sequence`` (``p+(1) ds:q-(2)``) had happened.

        The state, the action occurrences and the action ids are unchanged
        afterwards. Unsigned atoms (actions to expand through an action
        policy) are not supported and are rejected. ``seconds`` bounds the
        evaluation: past it, Overrun, and this engine must be replaced.
        """
        with deadline(seconds):
            return self._simulate(policy, query, sequence, action_policy)

    def _simulate(self, policy: str, query: str, sequence: str,
                  action_policy: str | None) -> set[tuple]:
        self._namespace(policy)
        if action_policy is not None:
            self._get(action_policy)
        steps = []
        for atom in parse_sequence(sequence):
            if atom.sign is None:
                raise PolicyError(f"'{atom}' is an action; simulate supports only table "
                                  "updates written 't+(...)' or 't-(...)'", sequence,
                                  atom.pos.line, atom.pos.col, "sequence")
            ctx = Context(policy, lambda k: self._schemas.get(k[0], {}).get(k[1]), self._arity)
            plain = Atom(atom.namespace, atom.table, atom.args, atom.named, pos=atom.pos)
            fact = resolve(Rule(_PROBE_HEAD, (_lit(plain),), sequence), ctx).body[0]
            if any(isinstance(t, Var) for t in fact.args):
                raise PolicyError(f"update '{atom}' must give every column a value", sequence,
                                  atom.pos.line, atom.pos.col, "sequence")
            assert fact.key is not None
            steps.append((fact.key, tuple(t.value for t in fact.args), atom.sign))
        undo = []
        orders: dict[str, list[str]] = {}  # rule ids, in order, of policies losing a fact
        self._simulating = True
        try:
            for key, row, sign in steps:
                base = self._db.table(key).base
                # As Congress's project_updates: a table's facts are one set, so
                # inserting a fact already stated as a rule changes nothing.
                if sign == "+" and row not in base and not self._facts(key, row):
                    self._ev.change_base(key, [row], [])
                    undo.append((key, row, sign))
                elif sign == "-" and row in base:
                    self._ev.change_base(key, [], [row])
                    undo.append((key, row, sign))
                elif sign == "-":
                    # A fact written as a rule (``q(1)``): take the rule out.
                    for pol_name, rule_id, text in self._facts(key, row):
                        orders.setdefault(pol_name, list(self._policies[pol_name].rules))
                        self.delete_rule(pol_name, rule_id)
                        undo.append((pol_name, rule_id, text))
            return self.query(policy, query)
        finally:
            for key, row, sign in reversed(undo):
                if sign == "+":
                    self._ev.change_base(key, [], [row])
                elif sign == "-":
                    self._ev.change_base(key, [row], [])
                else:  # (policy, rule id, text) of a fact rule taken out
                    self.insert_rule(key, sign, rule_id=row)
            for pol_name, order in orders.items():  # put them back in their places
                pol = self._policies[pol_name]
                pol.rules = {rule_id: pol.rules[rule_id] for rule_id in order}
            self._ev.risen.clear()
            self._simulating = False

    def _facts(self, key: TableKey, row: Row) -> list[tuple[str, str, str]]:
        """(policy, rule id, text) of the fact rules that state ``row`` of ``key``."""
        found = []
        for pol in self._policies.values():
            for entry in pol.rules.values():
                r = entry.resolved
                if (r.head_key == key and not r.body
                        and all(isinstance(t, Const) for t in r.head_args)
                        and tuple(t.value for t in r.head_args) == row):
                    found.append((pol.name, entry.rule_id, str(r.rule)))
        return found

    # -- actions -------------------------------------------------------------
    def _actions(self) -> list[Action]:
        risen, self._ev.risen = self._ev.risen, []
        if self._simulating:
            return []
        actions = []
        for key, row in risen:
            datasource, action = key[1].split(":", 1)
            n = self._occurrences.get((key[1], row), 0) + 1
            self._occurrences[(key[1], row)] = n
            actions.append(Action(action_id(datasource, action, row, n), datasource, action,
                                  row, n))
        actions.sort(key=lambda a: (a.datasource, a.action, json.dumps(list(a.args))))
        return actions


# A head that only carries a literal through resolve(): its name cannot be a
# table of any policy (the parser never yields it), so arity checks never clash.
_PROBE_HEAD = Atom(None, "__probe", ())


def _lit(atom: Atom) -> Literal:
    return Literal(atom)
