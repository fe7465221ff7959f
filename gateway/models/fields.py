"""Field types that behave the same on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

from peewee import DateTimeField, DecimalField, Node, TextField

from gateway.secret_keys import keys_for


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the default for timestamps)."""
    return datetime.now(timezone.utc)


class UTCDateTimeField(DateTimeField):
    """A timestamp stored as naive UTC and read back as an aware UTC datetime.

    SQLite has no time zone type and PostgreSQL's ``TIMESTAMP`` silently drops an
    offset, so values are normalised on the way in. Naive datetimes are refused:
    whether they meant local time or UTC cannot be known.
    """

    def db_value(self, value):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(
                    f"{self.name}: naive datetime {value!r}; pass an aware one, e.g. utcnow()"
                )
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class JSONTextField(TextField):
    """JSON kept in a TEXT column.

    One storage type on both databases keeps migrations and raw SQL identical;
    we never query inside these documents.
    """

    def db_value(self, value):
        if value is None or isinstance(value, Node):
            return value
        return json.dumps(value)

    def python_value(self, value):
        if value is None:
            return None
        return json.loads(value)


class MoneyField(DecimalField):
    """An amount with a fixed number of decimal places, read back as such on both databases.

    PostgreSQL returns ``NUMERIC(14, 4)`` as ``Decimal('500.5000')``; SQLite
    keeps a number and returns ``500.5``. Quantizing on the way out makes both
    ``Decimal('500.5000')``. Values are rounded to ``decimal_places`` on the way in.
    """

    def __init__(self, max_digits=14, decimal_places=4, **kwargs):
        kwargs.setdefault("auto_round", True)
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def python_value(self, value):
        value = super().python_value(value)
        if value is None:
            return None
        return value.quantize(Decimal(1).scaleb(-self.decimal_places))


class EncryptedTextField(TextField):
    """A secret the gateway must read back (a webhook signing secret, a provider's API
    key), encrypted on the way in and decrypted on the way out (``gateway.secret_keys``:
    the keys are those of the model's database). A stored value that is not encrypted,
    or whose key is missing, raises ``SecretKeyError`` instead of reading back empty.
    Compare with such a field in no query: each encryption of a value differs."""

    def db_value(self, value):
        if value is None or isinstance(value, Node):
            return value
        if not isinstance(value, str):
            raise TypeError(f"{self.name}: a secret is a string, not {type(value).__name__}")
        return keys_for(self.model._meta.database).encrypt(value)

    def python_value(self, value):
        if value is None:
            return None
        what = f"{self.model._meta.table_name}.{self.column_name}"
        return keys_for(self.model._meta.database).decrypt(value, what)
