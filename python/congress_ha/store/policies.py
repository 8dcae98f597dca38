"""Policies and rules in the database, every write guarded by the revision.

``load()`` returns the whole policy state at one revision.  Writers pass the
revision they validated against; ``RevisionConflict`` means another node wrote
first, and the caller must validate again on the new state (docs/api.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from congress_ha.store.db import StoreError
from congress_ha.store.errors import lost_race
from congress_ha.store.models import LibraryPolicy, Policy, PolicyRevision, Rule

LOAD_TRIES = 5


class RevisionConflict(Exception):
    """The policies changed since the caller validated its change."""


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


@dataclass
class PolicyRecord:
    id: str
    name: str
    abbreviation: str
    description: str
    owner_id: str
    kind: str
    rules: list[RuleRecord] = field(default_factory=list)


@dataclass
class RuleRecord:
    id: str
    rule: str
    name: str
    comment: str


@dataclass
class PolicyState:
    revision: int
    policies: dict[str, PolicyRecord]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class PolicyStore:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions  # the revision row is seeded by migration 0001

    def revision(self) -> int:
        with self.sessions() as s:
            return s.get(PolicyRevision, 1).revision

    def load(self) -> PolicyState:
        """The policies and rules at one revision.

        Read committed (PostgreSQL) and SQLite's autocommit reads give each
        statement its own snapshot, so the revision is read before and after the
        rows; a write in between (they move together) means read again.
        """
        for _ in range(LOAD_TRIES - 1):
            state, after = self._load_once()
            if after == state.revision:
                return state
        return self._load_once()[0]  # rows at least as new as its revision: safe

    def _load_once(self) -> tuple[PolicyState, int]:
        with self.sessions() as s:
            rev = s.get(PolicyRevision, 1).revision
            policies = {p.id: PolicyRecord(p.id, p.name, p.abbreviation, p.description,
                                           p.owner_id, p.kind)
                        for p in s.execute(select(Policy).order_by(Policy.created_at))
                        .scalars()}
            for r in s.execute(select(Rule).order_by(Rule.created_at, Rule.id)).scalars():
                if r.policy_id in policies:
                    policies[r.policy_id].rules.append(RuleRecord(r.id, r.rule, r.name,
                                                                  r.comment))
            after = s.execute(select(PolicyRevision.revision)
                              .where(PolicyRevision.id == 1)).scalar_one()
        return PolicyState(rev, {p.name: p for p in policies.values()}), after

    # -- guarded writes -------------------------------------------------------

    def _write(self, expected: int, change) -> int:
        """Run ``change(session)`` and bump the revision, or raise RevisionConflict."""
        try:
            with self.sessions.begin() as s:
                done = s.execute(update(PolicyRevision)
                                 .where(PolicyRevision.id == 1,
                                        PolicyRevision.revision == expected)
                                 .values(revision=expected + 1))
                if done.rowcount != 1:
                    raise RevisionConflict(expected)
                change(s)
            return expected + 1
        except IntegrityError:
            raise AlreadyExists() from None
        except (RevisionConflict, NotFound, AlreadyExists):
            raise
        except SQLAlchemyError as exc:
            if "locked" in str(exc):  # SQLite: another writer holds the lock
                raise RevisionConflict(expected) from None
            if lost_race(exc):
                # Galera: another node committed a write at this revision first,
                # and this write set failed certification at COMMIT (a deadlock
                # error); nothing of it was kept. The same answer as losing the
                # guard on one node: validate again on the new state.
                raise RevisionConflict(expected) from None
            raise StoreError(f"database write failed: {str(exc).splitlines()[0]}") from None

    def create_policy(self, expected: int, name: str, abbreviation: str, description: str,
                      kind: str, owner_id: str = "user",
                      rules: list[tuple[str, str, str]] = ()) -> tuple[int, PolicyRecord]:
        pid = str(uuid.uuid4())
        record = PolicyRecord(pid, name, abbreviation, description, owner_id, kind)

        def change(s: Session) -> None:
            if s.execute(select(Policy.id).where(Policy.name == name)).first():
                raise AlreadyExists(name)
            s.add(Policy(id=pid, name=name, abbreviation=abbreviation,
                         description=description, owner_id=owner_id, kind=kind,
                         created_at=_now()))
            s.flush()
            for text, rname, comment in rules:
                rid = str(uuid.uuid4())
                s.add(Rule(id=rid, policy_id=pid, rule=text, name=rname, comment=comment,
                           created_at=_now()))
                record.rules.append(RuleRecord(rid, text, rname, comment))

        return self._write(expected, change), record

    def delete_policy(self, expected: int, policy_id: str) -> int:
        def change(s: Session) -> None:
            pol = s.get(Policy, policy_id)
            if pol is None:
                raise NotFound(policy_id)
            for r in s.execute(select(Rule).where(Rule.policy_id == policy_id)).scalars():
                s.delete(r)
            s.delete(pol)

        return self._write(expected, change)

    def add_rule(self, expected: int, policy_id: str, rule_id: str, text: str, name: str,
                 comment: str) -> int:
        def change(s: Session) -> None:
            if s.get(Policy, policy_id) is None:
                raise NotFound(policy_id)
            s.add(Rule(id=rule_id, policy_id=policy_id, rule=text, name=name,
                       comment=comment, created_at=_now()))

        return self._write(expected, change)

    def delete_rule(self, expected: int, rule_id: str) -> int:
        def change(s: Session) -> None:
            rule = s.get(Rule, rule_id)
            if rule is None:
                raise NotFound(rule_id)
            s.delete(rule)

        return self._write(expected, change)

    # -- library policies (not evaluated: no revision needed) -----------------

    def library(self) -> list[LibraryPolicy]:
        with self.sessions() as s:
            return list(s.execute(select(LibraryPolicy).order_by(LibraryPolicy.name))
                        .scalars())

    def library_get(self, ident: str) -> LibraryPolicy:
        with self.sessions() as s:
            lib = s.get(LibraryPolicy, ident) or s.execute(
                select(LibraryPolicy).where(LibraryPolicy.name == ident)).scalars().first()
        if lib is None:
            raise NotFound(ident)
        return lib

    def library_put(self, name: str, abbreviation: str, description: str, kind: str,
                    rules: list[dict], ident: str | None = None) -> LibraryPolicy:
        try:
            with self.sessions.begin() as s:
                lib = s.get(LibraryPolicy, ident) if ident else None
                if ident and lib is None:
                    raise NotFound(ident)
                if lib is None:
                    lib = LibraryPolicy(id=str(uuid.uuid4()))
                    s.add(lib)
                lib.name, lib.abbreviation, lib.description = name, abbreviation, description
                lib.kind, lib.rules = kind, rules
            return lib
        except IntegrityError:
            raise AlreadyExists(name) from None

    def library_delete(self, ident: str) -> None:
        with self.sessions.begin() as s:
            lib = s.get(LibraryPolicy, ident) or s.execute(
                select(LibraryPolicy).where(LibraryPolicy.name == ident)).scalars().first()
            if lib is None:
                raise NotFound(ident)
            s.delete(lib)
