"""Errors the service raises for the API to turn into HTTP answers.

Each carries a message for people: what was wrong and what to do.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """Bad rule, body, or driver config: HTTP 400."""

    status = 400


class NotFound(ServiceError):
    status = 404


class AlreadyExists(ServiceError):
    status = 409


class Conflict(ServiceError):
    """Concurrent changes kept colliding: HTTP 409, try again."""

    status = 409


class Unavailable(ServiceError):
    """A needed peer (the DSD) or the database cannot answer now: HTTP 503."""

    status = 503


class Busy(Unavailable):
    """The engine is busy: HTTP 503 with Retry-After; nothing was changed."""

    retry_after = 1


class TooLarge(ServiceError):
    """A request over one of the [limits]: HTTP 413, the message names the option."""

    status = 413
