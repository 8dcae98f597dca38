"""The one error of the store, and how to tell a lost race from an outage."""

from __future__ import annotations

# Errors that mean "this transaction lost a race; run it again", by driver code:
# MySQL/MariaDB 1213 (a deadlock; on Galera also a write set that failed
# certification at COMMIT because another node committed a conflicting one
# first), PostgreSQL 40001 (serialization failure) and 40P01 (deadlock).
MYSQL_RETRY_CODES = frozenset({1213})
POSTGRES_RETRY_STATES = frozenset({"40001", "40P01"})


class StoreError(Exception):
    """The database could not be opened or used; the message says why."""


def lost_race(exc: BaseException) -> bool:
    """True if ``exc`` (an SQLAlchemy error) says the transaction was rolled back
    because a concurrent one won, not because the database is away.

    Nothing of the transaction was committed: the caller may run it again.
    """
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in POSTGRES_RETRY_STATES:
        return True
    args = getattr(orig, "args", ())
    return bool(args) and isinstance(args[0], int) and args[0] in MYSQL_RETRY_CODES
