"""Who may see and change what on the voice-agent admin surface.

Every resource an autonomous agent creates records its creator: the key's owner agent
(``owner_agent``, None when an account-wide key created it). The rules, applied to a
query of any such model:

* nothing crosses accounts;
* an account-wide key reads and writes everything of its account;
* a key with an owner agent reads and writes only what that owner created;
* ``voice:read:all`` widens *reads* to every owner of the account, never writes.

A row outside what the key may touch is answered as missing (404), never as forbidden,
so that a key cannot learn which ids exist elsewhere.
"""
from __future__ import annotations

from flask import g
from peewee import Model, ModelSelect

from gateway.api.errors import fail
from gateway.auth.keys import has_scope


def account_id() -> int:
    """The account of this request's key."""
    return g.auth.account.id


def owner_of_new_rows() -> int | None:
    """The owner agent recorded on what this request creates."""
    return g.auth.owner_agent_id


def readable(model: type[Model]) -> ModelSelect:
    """The rows of ``model`` this request's key may read."""
    query = model.select().where(model.account == g.auth.account.id)
    if g.auth.owner_agent_id is not None and not has_scope(g.auth, "voice:read:all"):
        query = query.where(model.owner_agent == g.auth.owner_agent_id)
    return query


def writable(model: type[Model]) -> ModelSelect:
    """The rows of ``model`` this request's key may change or delete."""
    query = model.select().where(model.account == g.auth.account.id)
    if g.auth.owner_agent_id is not None:
        query = query.where(model.owner_agent == g.auth.owner_agent_id)
    return query


def one(query: ModelSelect, row_id, what: str):
    """The row ``row_id`` of ``query``, or a 404 that names ``what``."""
    model = query.model
    row = query.where(model._meta.primary_key == row_id).first() if _is_id(row_id) else None
    if row is None:
        fail(404, f"{what} not found")
    return row


def _is_id(value) -> bool:
    """Whether ``value`` can be a row id (ids are 32-bit on PostgreSQL: a larger number
    would be a database error there, not a miss)."""
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        value = int(value)
    return isinstance(value, int) and 0 < value < 2**31
