"""Peewee models and migrations.

Typical use::

    from gateway.models import connect, migrate, Call
    db = connect(settings.database_url)
    migrate(db)
"""
from .accounts import ACCOUNT_STATUSES, Account
from .calls import CALL_DIRECTIONS, CALL_STATUSES, END_REASONS, Call, CallEvent
from .db import BaseModel, connect, database, database_from_url
from .fields import JSONTextField, UTCDateTimeField, utcnow
from .migrations import MIGRATIONS, SchemaVersion, migrate

# Every application model, parents before children (the order create/drop need).
ALL_MODELS = [Account, Call, CallEvent]

__all__ = [
    "ACCOUNT_STATUSES",
    "ALL_MODELS",
    "Account",
    "BaseModel",
    "CALL_DIRECTIONS",
    "CALL_STATUSES",
    "Call",
    "CallEvent",
    "END_REASONS",
    "JSONTextField",
    "MIGRATIONS",
    "SchemaVersion",
    "UTCDateTimeField",
    "connect",
    "database",
    "database_from_url",
    "migrate",
    "utcnow",
]
