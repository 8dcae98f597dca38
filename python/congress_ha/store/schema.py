"""The database's schema revision: checked at every start, migrated with Alembic.

Every api-pe clone instance and the DSD start at once on a new cluster, and
each finds the database empty: two CREATE TABLEs of one name collide
(PostgreSQL: pg_type's unique index; SQLite: "already exists"; MariaDB: error
1050), and so do two seed rows.  So the revision is read, and an empty database
migrated, one process at a time, under a lock the database itself holds
(PostgreSQL advisory lock, MariaDB GET_LOCK, a lock file beside a SQLite
database); Alembic runs on the connection that holds it.

A start migrates only an empty database.  One at an older revision is refused
until an operator runs ``congress-ha-ctl db upgrade`` once; one at a revision
this code does not know was upgraded by a newer release, and this node is the
one to upgrade (docs/operations.md, "Schema upgrades").
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from congress_ha.store.errors import StoreError
from congress_ha.timings import seconds

LOG = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# The revision of the schema that releases before migrations made with
# create_all, and its tables: such a database is stamped at it, unchanged.
BASELINE = "0001"
BASELINE_TABLES = frozenset({"action_journal", "datasources", "library_policies", "pushed_rows",
                             "policies", "policy_revision", "rules"})

SCHEMA_LOCK_KEY = 0x636F6E67  # "cong": PostgreSQL advisory lock key
SCHEMA_LOCK_NAME = "congress-ha-schema"  # MariaDB/MySQL GET_LOCK name
SCHEMA_LOCK_TIMEOUT = int(seconds("SCHEMA_LOCK_TIMEOUT"))  # congress_ha/timings.py


@dataclass(frozen=True)
class SchemaChange:
    """What opening the database did to its schema."""

    before: str | None  # the database's revision; None: it had none of our tables
    after: str          # its revision now: this code's head
    stamped: bool = False  # tables made before migrations, stamped BASELINE


@dataclass(frozen=True)
class Revisions:
    """The database's revision and this code's, read without changing anything."""

    database: str | None  # None: an empty database
    head: str
    unstamped: bool = False  # tables made before migrations: BASELINE, not stamped yet
    known: bool = True       # False: a revision this code does not know (a newer release's)


def read_revisions(engine: Engine) -> Revisions:
    """The database's revision and this code's head; changes nothing, takes no lock."""
    script = _script()
    with engine.connect() as conn:
        revision, unstamped = _revision_of(conn, _where(engine))
    return Revisions(revision, script.get_current_head(), unstamped,
                     revision is None or _knows(script, revision))


def ensure_schema(engine: Engine, upgrade: bool = False) -> SchemaChange:
    """Bring an empty database to head, stamp one made before migrations at
    BASELINE; with ``upgrade``, migrate an older one (a stamped one too) to head.
    StoreError if the database is older (without ``upgrade``; a stamp stays) or
    newer than this code.  Safe when several processes do it at once."""
    script = _script()
    target = script.get_current_head()
    where = _where(engine)
    config = _config()
    with schema_lock(engine) as conn:
        config.attributes["connection"] = conn
        before, unstamped = _revision_of(conn, where)
        try:
            if unstamped:
                LOG.info("%s: tables of a release before migrations: stamped at %s",
                         where, BASELINE)
                command.stamp(config, BASELINE)
            if before is None:
                LOG.info("%s: empty database: creating the schema (revision %s)", where, target)
                command.upgrade(config, "head")
            elif before != target:
                if not _knows(script, before):
                    raise StoreError(
                        f"{where}: the database schema is at revision {before}, which this "
                        f"release does not know (its newest is {target}): this node runs an "
                        "older congress-ha than the database: upgrade congress-ha on this node")
                if not upgrade:
                    if unstamped:
                        # The stamp is true whatever this start decides: keep it.
                        # (PostgreSQL: this ends the lock's transaction too; nothing
                        # else happens under it.)
                        conn.commit()
                    raise StoreError(
                        f"{where}: the database schema is at revision {before}, this release "
                        f"needs {target}: run `congress-ha-ctl db upgrade` (once, from any "
                        "node) before starting it")
                LOG.info("%s: upgrading the schema from %s to %s", where, before, target)
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(f"{where}: cannot migrate the schema: {exc}") from None
        conn.commit()
    return SchemaChange(before, target, unstamped)


def _where(engine: Engine) -> str:
    return f"[database] connection {engine.url.render_as_string(hide_password=True)!r}"


def _revision_of(conn: Connection, where: str) -> tuple[str | None, bool]:
    """(revision, unstamped): what alembic_version holds; BASELINE and True for the
    tables of a release before migrations; (None, False) for an empty database."""
    heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:
        raise StoreError(f"{where}: alembic_version holds several revisions "
                         f"({', '.join(heads)}); congress-ha's migrations are one line: "
                         "keep the row of the newest only")
    if heads:
        return heads[0], False
    present = BASELINE_TABLES & set(inspect(conn).get_table_names())
    if not present:
        return None, False
    if present != BASELINE_TABLES:
        # Stamping it would claim tables it lacks; migrating it would collide with
        # the ones it has.  A first migration cut short on MariaDB, which cannot
        # undo DDL, leaves this; so do another program's tables of the same names.
        raise StoreError(
            f"{where}: the database holds some of congress-ha's tables "
            f"({', '.join(sorted(present))}) but not "
            f"{', '.join(sorted(BASELINE_TABLES - present))}, and no schema revision "
            "(alembic_version): a first start cut short, or another program's tables; "
            "if they hold nothing you need, drop them and start again")
    return BASELINE, True


def _knows(script: ScriptDirectory, revision: str) -> bool:
    return any(s.revision == revision for s in script.walk_revisions())


def _config() -> Config:
    """Alembic's configuration, without an alembic.ini: the scripts ship in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection that holds the schema lock until the block ends."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database
        if database in (None, "", ":memory:"):
            with engine.connect() as conn:
                yield conn
            return
        # SQLite has no advisory locks: a lock file beside the database.
        try:
            lock = open(f"{database}.schema-lock", "a")
        except OSError as exc:
            raise StoreError(f"cannot open the database ([database] connection "
                             f"'sqlite:///{database}'): its lock file {exc.filename}: "
                             f"{exc.strerror}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        if dialect == "postgresql":
            # Held until the transaction ends: the migrations and alembic_version
            # share it (PostgreSQL's DDL is transactional).
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            yield conn
        elif dialect in ("mysql", "mariadb"):
            # DDL commits implicitly in MariaDB, so a transaction cannot hold the
            # lock: GET_LOCK belongs to the session and survives those commits.
            got = conn.execute(text("SELECT GET_LOCK(:n, :t)"),
                               {"n": SCHEMA_LOCK_NAME, "t": SCHEMA_LOCK_TIMEOUT}).scalar()
            if got != 1:
                raise StoreError(f"another process held the schema lock for over "
                                 f"{SCHEMA_LOCK_TIMEOUT} s (GET_LOCK {SCHEMA_LOCK_NAME!r})")
            try:
                yield conn
            finally:
                conn.rollback()  # a refusal leaves its transaction open
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": SCHEMA_LOCK_NAME})
                conn.commit()
        else:
            yield conn
