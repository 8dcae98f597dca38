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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from congress_ha.config import limit
from congress_ha.engine import Engine, PolicyError
from congress_ha.engine.errors import Overrun
from congress_ha.engine.parser import parse
from congress_ha.errors import (
    AlreadyExists,
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    TooLarge,
    Unavailable,
)
from congress_ha.store import policies as ps
from congress_ha.store.db import StoreError

LOG = logging.getLogger(__name__)
DEFAULT_POLICIES = (("classification", "nonrecursive"), ("action", "action"))
KINDS = ("nonrecursive", "recursive", "action", "database", "materialized")
RETRIES = 5


@dataclass(frozen=True)
class Published:
    revision: int
    records: dict[str, ps.PolicyRecord]  # by name


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
        # Set by the server: PolicyEngineRole.rebuild_engine, which makes a new
        # engine from the replica and load_into() when this one misbehaves.
        self.rebuild: Callable[[str], None] | None = None
        self.quarantined: dict[str, tuple[str, str, str]] = {}  # rule id -> policy, text, why
        # What readers see: the records and their revision, replaced together at
        # the end of each sync (never changed after), so a lookup takes no lock.
        self.published = Published(-1, {})
        self.set_limits(None)  # the server sets them from [limits]

    def set_limits(self, settings) -> None:
        self.max_rule_chars = limit(settings, "max_rule_chars")
        self.max_rule_literals = limit(settings, "max_rule_literals")
        self.engine_wait = limit(settings, "api_engine_wait")
        self.simulate_seconds = limit(settings, "max_simulate_seconds")
        self.change_seconds = limit(settings, "max_change_seconds")
        self.slots_total = limit(settings, "api_engine_requests")
        self.slots = threading.BoundedSemaphore(self.slots_total)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """The engine for one API request: a slot, then the lock, each bounded.

        Busy (503, Retry-After) rather than wait: at most api_engine_requests of the
        API's threads ever wait here, so /healthz and requests that need no engine
        always find a thread, and none waits longer than api_engine_wait.
        """
        if not self.slots.acquire(blocking=False):
            raise Busy(f"the policy engine is serving {self.slots_total} requests; retry "
                       f"shortly ([limits] api_engine_requests = {self.slots_total})")
        try:
            if not self.lock.acquire(timeout=self.engine_wait):
                raise Busy(f"the policy engine has been busy for {self.engine_wait} s "
                           f"(a long evaluation); retry shortly ([limits] api_engine_wait "
                           f"= {self.engine_wait})")
            try:
                yield
            finally:
                self.lock.release()
        finally:
            self.slots.release()

    def _trial(self, policy: str, rules: list[str], create_kind: str | None = None) -> None:
        """Under the lock: what the change costs, before it is stored (TooLarge if over
        [limits] max_change_seconds; the engine is then rebuilt, as it may hold half
        of the trial)."""
        try:
            self.engine.trial(policy, rules, self.change_seconds, create_kind)
        except PolicyError as exc:
            raise InvalidInput(str(exc)) from None
        except Overrun:
            LOG.warning("a change to policy %s ran over %s s in its trial; "
                        "rebuilding the engine", policy, self.change_seconds)
            if self.rebuild is not None:
                self.rebuild(f"a trial ran over {self.change_seconds} s")
            raise TooLarge(f"evaluating this change ran over [limits] max_change_seconds = "
                           f"{self.change_seconds}; nothing was stored: narrow the rule's "
                           "joins") from None
        except Exception as exc:  # noqa: BLE001 - an engine bug: replace the engine
            LOG.exception("the trial of a change to policy %s failed",
                          policy)
            if self.rebuild is not None:
                self.rebuild(f"trial: {type(exc).__name__}: {exc}")
            raise InvalidInput(f"the engine could not evaluate this change "
                               f"({type(exc).__name__}: {exc}); nothing was stored") from None

    def check_schema(self, datasource: str, schema: dict[str, list[str]]) -> None:
        """InvalidInput if the rules held use a table of ``schema`` with another width."""
        with self.serving():
            try:
                self.engine.check_data(datasource, schema, {})
            except PolicyError as exc:
                raise InvalidInput(f"datasource {datasource}: {exc}; change the rules "
                                   "or the datasource's tables") from None

    def check_bounds(self, text: object, what: str = "rule") -> None:
        """Refuse a rule over [limits] before any lock is taken or any work done."""
        if not isinstance(text, str):
            raise InvalidInput(f"{what}: expected a string, e.g. \"p(x) :- q(x)\"")
        if len(text) > self.max_rule_chars:
            raise TooLarge(f"{what} is {len(text)} characters; the limit is [limits] "
                           f"max_rule_chars = {self.max_rule_chars}: split it into rules")
        try:
            statements = parse(text)
        except PolicyError as exc:
            raise InvalidInput(str(exc)) from None
        for rule in statements:
            if len(rule.body) > self.max_rule_literals:
                raise TooLarge(f"{what} has {len(rule.body)} body literals; the limit is "
                               f"[limits] max_rule_literals = {self.max_rule_literals}: "
                               "split it into rules that name their joins")

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

    def sync(self, wait: float | None = None) -> int:
        """Bring the engine to the stored revision; send what it newly derives.

        ``wait``: at most this long for the engine lock (an API write), else Busy;
        None (the background sync) waits as long as it takes.
        """
        try:
            state = self.store.load()
        except StoreError as exc:
            LOG.warning("policy sync failed: %s", exc)
            return self.revision
        # Compared with what is *published*: ``self.revision`` moves inside
        # _apply, before the records are published, so returning on it could
        # answer the caller from the state before its own write (read-your-writes).
        if state.revision <= self.published.revision:
            return self.published.revision
        if not self.lock.acquire(timeout=-1 if wait is None else wait):
            raise Busy(f"the policy engine has been busy for {wait} s (a long evaluation); "
                       f"retry shortly ([limits] api_engine_wait = {wait})")
        try:
            # <=, not ==: a sync that read the database before another one applied
            # a newer revision must not put the older state back (read-your-writes).
            if state.revision <= self.revision:
                return self.revision
            try:
                actions = self._apply(state)
            except Exception as exc:  # noqa: BLE001 - an engine bug: never serve from it
                LOG.exception("the engine failed applying revision %d; rebuilding it",
                              state.revision)
                self.records = dict(state.policies)
                self.revision = state.revision
                if self.rebuild is None:
                    raise
                self.rebuild(f"{type(exc).__name__}: {exc}")
                actions = []
            finally:
                self._publish()
        finally:
            self.lock.release()
        self.send_actions(actions)
        return state.revision

    def load_into(self, engine: Engine) -> None:
        """Every policy and rule held into ``engine`` (a rebuild); what it refuses is
        quarantined, never fatal."""
        self.quarantined.clear()
        for name, rec in self.records.items():
            try:
                engine.create_policy(name, _engine_kind(rec.kind), rec.abbreviation or None,
                                     rec.description)
            except Exception as exc:  # noqa: BLE001 - quarantined: the rest must load
                for rule in rec.rules:
                    self._quarantine(name, rule, f"its policy cannot be created: {exc}")
                continue
            for rule in rec.rules:
                try:
                    held, _ = engine.insert_rule(name, rule.rule, rule_id=rule.id)
                    if held != rule.id:
                        self._quarantine(name, rule, f"it repeats rule {held}")
                except Exception as exc:  # noqa: BLE001 - quarantined: the rest must load
                    self._quarantine(name, rule, exc)

    def _quarantine(self, policy: str, rule: ps.RuleRecord, why: object) -> None:
        """A stored rule this engine cannot run: skipped, shown, never fatal."""
        text = why if isinstance(why, str) else f"{type(why).__name__}: {why}"
        if self.quarantined.get(rule.id, ("", "", ""))[2] != text:
            LOG.error("stored rule %s of policy %s quarantined (not evaluated): %s; "
                      "delete it with `congress-ha-ctl rules delete %s`",
                      rule.id, policy, text, rule.id)
        self.quarantined[rule.id] = (policy, rule.rule, text)

    def _apply(self, state: ps.PolicyState) -> list:
        actions: list = []
        engine = self.engine
        for name, old in list(self.records.items()):
            new = state.policies.get(name)
            if new is None or new.id != old.id or new.kind != old.kind:
                actions += engine.delete_policy(name)
                del self.records[name]
                for rule in old.rules:
                    self.quarantined.pop(rule.id, None)
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
                if self.quarantined.pop(rid, None) is None:  # never in the engine
                    actions += engine.delete_rule(name, rid)
            for rule in new.rules:
                if rule.id in old_ids:
                    continue
                try:
                    held, fired = engine.insert_rule(name, rule.rule, rule_id=rule.id)
                    actions += fired
                    if held != rule.id:  # stored twice (before writes checked it)
                        self._quarantine(name, rule, f"it repeats rule {held}")
                except PolicyError as exc:
                    # Stored under the guard, so valid when written; say so loudly.
                    self._quarantine(name, rule, exc)
            self.records[name] = new
        self.revision = state.revision
        LOG.info("policies at revision %d", self.revision)
        return actions

    def _publish(self) -> None:
        self.published = Published(self.revision, dict(self.records))

    # -- reads ----------------------------------------------------------------

    # Lookups read ``published``, a copy made at the end of each sync and never
    # changed after: no lock, so they never wait behind an evaluation.

    def _find(self, ident: str) -> ps.PolicyRecord:
        for rec in self.published.records.values():
            if ident in (rec.id, rec.name):
                return rec
        raise NotFound(f"policy {ident!r} not found")

    def list_policies(self) -> list[ps.PolicyRecord]:
        return list(self.published.records.values())

    def get_policy(self, ident: str) -> ps.PolicyRecord:
        return self._find(ident)

    def get_rule(self, policy: str, rule_id: str) -> ps.RuleRecord:
        for rule in self._find(policy).rules:
            if rule_id in (rule.id, rule.name):
                return rule
        raise NotFound(f"rule {rule_id!r} not found in policy {policy!r}")

    def tables(self, policy: str) -> list[str]:
        name = self._find(policy).name
        with self.serving():
            return self.engine.tables(name)

    def rows(self, policy: str, table: str) -> set[tuple]:
        name = self._find(policy).name
        with self.serving():
            if table not in self.engine.tables(name):
                raise NotFound(f"policy {name!r} has no table {table!r}")
            return self.engine.select(name, table)

    def trace(self, policy: str, table: str) -> tuple[set[tuple], list[str]]:
        name = self._find(policy).name
        with self.serving():
            if table not in self.engine.tables(name):
                raise NotFound(f"policy {name!r} has no table {table!r}")
            return self.engine.trace(name, table)

    def simulate(self, policy: str, query: str, sequence: str,
                 action_policy: str | None) -> set[tuple]:
        name = self._find(policy).name
        action = self._find(action_policy).name if action_policy else None
        for text, what in ((query, "query"), (sequence, "sequence")):
            if isinstance(text, str) and len(text) > self.max_rule_chars:
                raise TooLarge(f"{what} is {len(text)} characters; the limit is [limits] "
                               f"max_rule_chars = {self.max_rule_chars}")
        with self.serving():
            try:
                return self.engine.simulate(name, query, sequence, action,
                                            seconds=self.simulate_seconds)
            except PolicyError as exc:
                raise InvalidInput(str(exc)) from None
            except Overrun:
                LOG.warning("simulate ran over %s s; rebuilding the engine", self.simulate_seconds)
                if self.rebuild is not None:
                    self.rebuild(f"simulate ran over {self.simulate_seconds} s")
                raise TooLarge(f"simulate ran over [limits] max_simulate_seconds = "
                               f"{self.simulate_seconds}; nothing changed, simulate less "
                               "at once") from None
            except Exception as exc:  # noqa: BLE001 - its undo may not have run
                LOG.exception("simulate failed inside the engine")
                if self.rebuild is not None:
                    self.rebuild(f"simulate: {type(exc).__name__}: {exc}")
                raise InvalidInput(f"simulate failed ({type(exc).__name__}: {exc}); the "
                                   "policies are unchanged") from None

    # -- guarded writes -------------------------------------------------------

    def _guarded(self, attempt: Callable[[int], object]):
        """Validate at the engine's revision, write under the guard; retry on conflict."""
        for _ in range(RETRIES):
            self.sync(wait=self.engine_wait)
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
        for i, (text, _, _) in enumerate(rules):
            self.check_bounds(text, f"rules[{i}]")

        def attempt(expected: int) -> ps.PolicyRecord:
            with self.serving():
                if name in self.records:
                    raise AlreadyExists(f"policy {name!r} already exists")
                self._check_new_policy(name, kind, [r for r, _, _ in rules])
                if rules:
                    self._trial(name, [r for r, _, _ in rules], _engine_kind(kind))
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
        first: dict[str, int] = {}
        for i, text in enumerate(rules):
            try:
                rule_id, _ = scratch.insert_rule(name, text)
            except PolicyError as exc:
                raise InvalidInput(str(exc)) from None
            if rule_id in first:
                raise InvalidInput(f"rules[{i}] repeats rules[{first[rule_id]}]: {text!r}")
            first[rule_id] = i

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
        self.check_bounds(text)
        rule_id = str(uuid.uuid4())

        def attempt(expected: int):
            record = self._find(policy)
            with self.serving():
                try:
                    self.engine.check_rule(record.name, text)
                except PolicyError as exc:
                    raise InvalidInput(str(exc)) from None
                except Exception as exc:  # noqa: BLE001 - a check changes nothing
                    LOG.exception("checking a rule failed")
                    raise InvalidInput(f"rule {text[:80]!r} could not be checked "
                                       f"({type(exc).__name__}: {exc}); nothing was stored"
                                       ) from None
                same = self.engine.same_rule(record.name, text)
                if same is not None:  # Congress: 409 "Rule already exists"
                    raise AlreadyExists(f"rule already exists in policy {record.name!r} "
                                        f"(id {same})")
                self._trial(record.name, [text])
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
            self.check_bounds(r["rule"], f"rules[{i}]")
            texts.append(r["rule"])
        with self.serving():
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
