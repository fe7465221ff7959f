"""API keys: a publishable id and a secret, of which only a hash is stored.

How the secret is hashed, and why a single SHA-256 is right here, is explained
in ``gateway.auth.keys``, the only module that creates or checks keys.
"""
from __future__ import annotations

from peewee import AutoField, CharField, ForeignKeyField

from .accounts import Account
from .agents import Agent
from .db import BaseModel
from .fields import JSONTextField, UTCDateTimeField, utcnow


class ApiKey(BaseModel):
    id = AutoField()
    account = ForeignKeyField(Account, backref="api_keys")
    # ``pk_live_…``: not a secret; the public calling API looks keys up by it.
    publishable_id = CharField(max_length=64, unique=True)
    # Hex SHA-256 of the whole ``sk_live_…`` secret; unique, so a lookup by secret is one index probe.
    secret_hash = CharField(max_length=64, unique=True)
    # The secret's first characters, so that an admin can tell keys apart.
    secret_prefix = CharField(max_length=16)
    scopes = JSONTextField(default=list)
    # A key owned by an agent sees only that agent's data (ownership isolation).
    # Deleting the agent deletes its keys: SET NULL would widen them to the account.
    owner_agent = ForeignKeyField(Agent, backref="api_keys", null=True, on_delete="CASCADE")
    name = CharField(max_length=100, null=True)
    created_at = UTCDateTimeField(default=utcnow)
    rotated_at = UTCDateTimeField(null=True)
    last_used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "api_keys"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def masked_secret(self) -> str:
        """What may be shown of the secret after creation: its prefix and an ellipsis."""
        return f"{self.secret_prefix}…"
