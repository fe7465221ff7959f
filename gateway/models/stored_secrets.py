"""Every encrypted value the database holds, at once: which keys they are encrypted with,
the check a process makes before it serves, and rotation onto the first key.

The values are those of the models' ``EncryptedTextField`` columns; they are read here
as stored (``fernet:<key id>:<token>``), never through the field.
"""
from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from peewee import Database, Table, fn

from gateway.secret_keys import HEAD_LENGTH, KEY_VAR, SecretKeyError, SecretKeys, keys_for, stored_key_id

from . import ALL_MODELS
from .fields import EncryptedTextField


class Rotation(NamedTuple):
    key_id: str  # the first key, which every stored secret is now encrypted with
    reencrypted: int
    unchanged: int  # already on the first key


def _columns(db: Database) -> list[tuple[Table, str, str]]:
    """``(table, primary key column, encrypted column)`` for every encrypted column, the
    table bound to ``db``."""
    found = []
    for model in ALL_MODELS:
        pk = model._meta.primary_key.column_name
        for field in model._meta.sorted_fields:
            if isinstance(field, EncryptedTextField):
                table = Table(model._meta.table_name).bind(db)
                found.append((table, pk, field.column_name))
    return found


def key_usage(db: Database) -> Counter:
    """How many stored secrets each key id encrypted; ``None`` counts those not encrypted."""
    usage: Counter = Counter()
    for table, _, column in _columns(db):
        head = fn.SUBSTR(getattr(table.c, column), 1, HEAD_LENGTH)
        query = (table.select(head, fn.COUNT(1)).where(getattr(table.c, column).is_null(False))
                 .group_by(head).tuples())
        for prefix, count in query:
            usage[stored_key_id(prefix)] += count
    return usage


def check(db: Database) -> SecretKeys:
    """The keys for ``db``'s stored secrets, once it is known that they open every one of
    them; else raise ``SecretKeyError`` (no key, or keys that are not there any more)."""
    keys = keys_for(db)
    usage = key_usage(db)
    if usage[None]:
        raise SecretKeyError(f"{usage[None]} stored secret(s) are not encrypted: run `voicegw migrate`")
    missing = {key_id: count for key_id, count in usage.items() if key_id not in keys.ids}
    if missing:
        listed = ", ".join(f"{key_id} ({count})" for key_id, count in sorted(missing.items()))
        raise SecretKeyError(
            f"stored secrets are encrypted with key(s) that {keys.source} does not hold: {listed};"
            f" it holds {', '.join(keys.ids)}. Give the missing key(s) in {KEY_VAR}, after the first")
    return keys


def rotate(db: Database) -> Rotation:
    """Re-encrypt with the first key every stored secret another key encrypted, in one
    transaction: afterwards the other keys can be removed."""
    keys = check(db)
    reencrypted = unchanged = 0
    with db.atomic():
        for table, pk, column in _columns(db):
            stored = getattr(table.c, column)
            rows = list(table.select(getattr(table.c, pk), stored).where(stored.is_null(False)).tuples())
            for row_id, value in rows:
                if stored_key_id(value) == keys.first_id:
                    unchanged += 1
                    continue
                plaintext = keys.decrypt(value, f"{table.__name__}.{column}")
                table.update({stored: keys.encrypt(plaintext)}).where(getattr(table.c, pk) == row_id).execute()
                reencrypted += 1
    return Rotation(keys.first_id, reencrypted, unchanged)
