"""Alembic's entry point: the migrations run on the connection congress-ha gives it.

congress_ha/store/schema.py calls Alembic with the connection that holds the
schema lock (``Config.attributes["connection"]``) and commits when it is done.
There is no alembic.ini, and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("congress-ha's migrations run through congress_ha.store.schema "
                       "(`congress-ha-ctl db upgrade`), on the connection that holds the "
                       "schema lock")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
