"""The one error of the store: the database could not be opened or used."""

from __future__ import annotations


class StoreError(Exception):
    """The database could not be opened or used; the message says why."""
