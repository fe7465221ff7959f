"""The wallet: per-minute call rates and the ledger behind ``Account.balance``.

``Account.balance`` is the running total of the account's ``LedgerEntry`` amounts: every
change of the balance writes an entry (a call's charge, a top-up, an adjustment) in the
transaction that changes it, with the balance it left behind. ``gateway.billing`` is the
only writer.
"""
from __future__ import annotations

from decimal import Decimal

from peewee import AutoField, CharField, ForeignKeyField, IntegerField, TextField

from .accounts import Account
from .db import BaseModel
from .fields import MoneyField, UTCDateTimeField, utcnow

LEDGER_KINDS = ("call", "credit", "adjustment")


class CallRate(BaseModel):
    """What an account pays per minute of talk for calls to numbers starting with
    ``prefix`` (E.164 with ``+``; '' matches every number). The longest matching prefix
    wins. Talk time is billed in whole pulses of ``pulse_sec`` seconds."""

    id = AutoField()
    # Indexed through the unique (account, prefix) index, which leads with it.
    account = ForeignKeyField(Account, backref="call_rates", on_delete="CASCADE", index=False)
    prefix = CharField(max_length=16, default="")
    per_minute = MoneyField(max_digits=14, decimal_places=4)
    pulse_sec = IntegerField(default=60)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "call_rates"
        indexes = ((("account", "prefix"), True),)


class LedgerEntry(BaseModel):
    """One change of an account's balance. ``amount`` is signed: a call's charge is
    negative, a top-up positive. A call is charged at most once (unique ``call_uuid``)."""

    id = AutoField()
    # Indexed through the (account, id) index, which leads with it.
    account = ForeignKeyField(Account, backref="ledger_entries", on_delete="CASCADE", index=False)
    kind = CharField(max_length=16)  # one of LEDGER_KINDS
    amount = MoneyField(max_digits=14, decimal_places=4)
    balance_after = MoneyField(max_digits=14, decimal_places=4, default=Decimal("0"))
    call_uuid = CharField(max_length=36, null=True, unique=True)
    billsec = IntegerField(null=True)
    per_minute = MoneyField(max_digits=14, decimal_places=4, null=True)
    pulse_sec = IntegerField(null=True)
    description = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "ledger_entries"
        indexes = ((("account", "id"), False),)
