"""Policies and rules on a PE: the engine kept at the database's revision.

``sync()`` brings the local engine to the stored revision (called at start,
on a ``policy_changed`` broadcast, and by a periodic poll).  A change from the
API is validated by the local engine at the revision it holds, written under
the revision guard, and then synced; if another node wrote first, the change
is validated again on the new state, so two API nodes can never both accept
rules that together are invalid (e.g. recursive).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from congress_ha.engine import Engine, PolicyError
from congress_ha.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Unavailable
from congress_ha.store import policies as ps
from congress_ha.store.db import StoreError

LOG = logging.getLogger(__name__)
DEFAULT_POLICIES = (("classification", "nonrecursive"), ("action", "action"))
KINDS = ("nonrecursive", "recursive", "action", "database", "materialized")
RETRIES = 5


class PolicyManager:
    def __init__(self, engine: Engine, store: ps.PolicyStore, lock: threading.RLock,
                 send_actions: Callable[[list], None], member: str = ""):
        self.engine = engine
        self.store = store
        self.lock = lock
        self.send_actions = send_actions
        self.member = member
        self.revision = -1
        self.records: dict[str, ps.PolicyRecord] = {}   # by name
        self.broadcast: Callable[[int], None] = lambda rev: None
        self.schemas: Callable[[], dict[str, dict[str, list[str]]]] = dict

    # -- sync -----------------------------------------------------------------

    def ensure_defaults(self) -> None:
        """Congress's default policies exist from the first start on."""
        # Every api-pe of a new cluster does this at once: a conflict means another
        # node wrote first, so look again until each default exists.
        for _ in range(RETRIES * len(DEFAULT_POLICIES)):
            state = self.store.load()
            missing = [(n, k) for n, k in DEFAULT_POLICIES if n not in state.policies]
            if not missing:
                break
            name, kind = missing[0]
            try:
                self.store.create_policy(state.revision, name, "", "", kind)
            except (ps.AlreadyExists, ps.RevisionConflict):
                continue
        else:
            raise StoreError("could not create the default policies "
                             f"{', '.join(n for n, _ in DEFAULT_POLICIES)}: the database "
                             "kept changing under this node; it will retry at its next start")
        self.sync()

    def sync(self) -> int:
        """Bring the engine to the stored revision; send what it newly derives."""
        try:
            state = self.store.load()
        except StoreError as exc:
            LOG.warning("[%s] policy sync failed: %s", self.member, exc)
            return self.revision
        with self.lock:
            if state.revision == self.revision:
                return self.revision
            actions = self._apply(state)
        self.send_actions(actions)
        return state.revision

    def _apply(self, state: ps.PolicyState) -> list:
        actions: list = []
        engine = self.engine
        for name, old in list(self.records.items()):
            new = state.policies.get(name)
            if new is None or new.id != old.id or new.kind != old.kind:
                actions += engine.delete_policy(name)
                del self.records[name]
        for name, new in state.policies.items():
            old = self.records.get(name)
            if old is None:
                engine.create_policy(name, _engine_kind(new.kind), new.abbreviation or None,
                                     new.description)
                old_ids: set[str] = set()
            else:
                old_ids = {r.id for r in old.rules}
            new_ids = {r.id for r in new.rules}
            for rid in old_ids - new_ids:
                actions += engine.delete_rule(name, rid)
            for rule in new.rules:
                if rule.id in old_ids:
                    continue
                try:
                    _, fired = engine.insert_rule(name, rule.rule, rule_id=rule.id)
                    actions += fired
                except PolicyError as exc:
                    # Stored under the guard, so valid when written; say so loudly.
                    LOG.error("[%s] stored rule %s of %s rejected by this engine: %s",
                              self.member, rule.id, name, exc)
            self.records[name] = new
        self.revision = state.revision
        LOG.info("[%s] policies at revision %d", self.member, self.revision)
        return actions

    # -- reads ----------------------------------------------------------------

    def _find(self, ident: str) -> ps.PolicyRecord:
        with self.lock:
            for rec in self.records.values():
                if ident in (rec.id, rec.name):
                    return rec
        raise NotFound(f"policy {ident!r} not found")

    def list_policies(self) -> list[ps.PolicyRecord]:
        with self.lock:
            return list(self.records.values())

    def get_policy(self, ident: str) -> ps.PolicyRecord:
        return self._find(ident)

    def get_rule(self, policy: str, rule_id: str) -> ps.RuleRecord:
        for rule in self._find(policy).rules:
            if rule_id in (rule.id, rule.name):
                return rule
        raise NotFound(f"rule {rule_id!r} not found in policy {policy!r}")

    def tables(self, policy: str) -> list[str]:
        name = self._find(policy).name
        with self.lock:
            return self.engine.tables(name)

    def rows(self, policy: str, table: str) -> set[tuple]:
        name = self._find(policy).name
        with self.lock:
            if table not in self.engine.tables(name):
                raise NotFound(f"policy {name!r} has no table {table!r}")
            return self.engine.select(name, table)

    def trace(self, policy: str, table: str) -> tuple[set[tuple], list[str]]:
        name = self._find(policy).name
        with self.lock:
            if table not in self.engine.tables(name):
                raise NotFound(f"policy {name!r} has no table {table!r}")
            return self.engine.trace(name, table)

    def simulate(self, policy: str, query: str, sequence: str,
                 action_policy: str | None) -> set[tuple]:
        name = self._find(policy).name
        action = self._find(action_policy).name if action_policy else None
        with self.lock:
            try:
                return self.engine.simulate(name, query, sequence, action)
            except PolicyError as exc:
                raise InvalidInput(str(exc)) from None

    # -- guarded writes -------------------------------------------------------

    def _guarded(self, attempt: Callable[[int], object]):
        """Validate at the engine's revision, write under the guard; retry on conflict."""
        for _ in range(RETRIES):
            self.sync()
            with self.lock:
                expected = self.revision
            try:
                result = attempt(expected)
            except ps.RevisionConflict:
                continue
            except ps.AlreadyExists as exc:
                raise AlreadyExists(f"{exc.args[0] if exc.args else 'it'} already exists") \
                    from None
            except ps.NotFound as exc:
                raise NotFound(f"{exc.args[0] if exc.args else 'it'} not found") from None
            except StoreError as exc:
                raise Unavailable(str(exc)) from None
            revision = self.sync()
            self.broadcast(revision)
            return result
        raise Conflict("the policies kept changing under this request; try again")

    def create_policy(self, name: str, abbreviation: str = "", description: str = "",
                      kind: str = "nonrecursive", rules=()) -> ps.PolicyRecord:
        if not isinstance(name, str):
            raise InvalidInput("policy name must be a string")
        if kind not in KINDS:
            raise InvalidInput(f"policy kind {kind!r} is not one of {', '.join(KINDS)}")
        rules = [(r, n or "", c or "") for r, n, c in rules]

        def attempt(expected: int) -> ps.PolicyRecord:
            with self.lock:
                if name in self.records:
                    raise AlreadyExists(f"policy {name!r} already exists")
                self._check_new_policy(name, kind, [r for r, _, _ in rules])
            return self.store.create_policy(expected, name, abbreviation or "",
                                            description or "", kind, rules=rules)[1]

        record = self._guarded(attempt)
        return self._find(record.id)

    def _check_new_policy(self, name: str, kind: str, rules: list[str]) -> None:
        # A scratch engine, not a scratch policy of ours: inserting rules here
        # must not advance the occurrence counts that make action ids agree.
        scratch = Engine()
        for datasource, tables in self.schemas().items():
            scratch.set_schema(datasource, tables)
        try:
            scratch.create_policy(name, _engine_kind(kind))  # the engine's name rules
        except PolicyError as exc:
            raise InvalidInput(str(exc)) from None
        for text in rules:
            try:
                scratch.insert_rule(name, text)
            except PolicyError as exc:
                raise InvalidInput(str(exc)) from None

    def delete_policy(self, ident: str) -> ps.PolicyRecord:
        record = self._find(ident)
        if record.name in dict(DEFAULT_POLICIES):
            raise InvalidInput(f"policy {record.name!r} is a default policy and cannot be "
                               "deleted")
        self._guarded(lambda expected: self.store.delete_policy(expected, record.id))
        return record

    def add_rule(self, policy: str, text: str, name: str = "",
                 comment: str = "") -> ps.RuleRecord:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("rule: give the rule text, e.g. \"p(x) :- q(x)\"")
        rule_id = str(uuid.uuid4())

        def attempt(expected: int):
            record = self._find(policy)
            with self.lock:
                try:
                    self.engine.check_rule(record.name, text)
                except PolicyError as exc:
                    raise InvalidInput(str(exc)) from None
            return self.store.add_rule(expected, record.id, rule_id, text, name or "",
                                       comment or "")

        self._guarded(attempt)
        return self.get_rule(policy, rule_id)

    def delete_rule(self, policy: str, rule_id: str) -> ps.RuleRecord:
        rule = self.get_rule(policy, rule_id)
        self._guarded(lambda expected: self.store.delete_rule(expected, rule.id))
        return rule

    # -- library --------------------------------------------------------------

    def library_get(self, ident: str):
        try:
            return self.store.library_get(ident)
        except ps.NotFound:
            raise NotFound(f"library policy {ident!r} not found") from None

    def library_put(self, name, abbreviation, description, kind, rules, ident=None):
        if kind not in KINDS:
            raise InvalidInput(f"policy kind {kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(name, str):
            raise InvalidInput("library policy name must be a string")
        texts = []
        for i, r in enumerate(rules):
            if not isinstance(r, dict) or not isinstance(r.get("rule"), str):
                raise InvalidInput(f"rules[{i}]: expected an object with a 'rule' string")
            texts.append(r["rule"])
        with self.lock:
            self._check_new_policy(name, kind, texts)
        try:
            return self.store.library_put(name, abbreviation, description, kind, rules, ident)
        except ps.AlreadyExists:
            raise AlreadyExists(f"library policy {name!r} already exists") from None
        except ps.NotFound:
            raise NotFound(f"library policy {ident!r} not found") from None

    def library_delete(self, ident: str):
        lib = self.library_get(ident)
        self.store.library_delete(lib.id)
        return lib


def _engine_kind(kind: str) -> str:
    # Congress's other kinds are stored as given and evaluated as nonrecursive.
    return kind if kind in ("nonrecursive", "recursive", "action") else "nonrecursive"
