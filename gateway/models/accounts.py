"""Customer accounts: the unit of isolation, billing and API access."""
from peewee import AutoField, BooleanField, CharField

from .db import BaseModel
from .fields import UTCDateTimeField, utcnow

ACCOUNT_STATUSES = ("active", "suspended")


class Account(BaseModel):
    id = AutoField()
    name = CharField(max_length=255, unique=True)
    status = CharField(max_length=16, default="active")
    api_enabled = BooleanField(default=True)
    region = CharField(max_length=8, default="US")
    timezone = CharField(max_length=64, default="UTC")
    currency = CharField(max_length=3, default="USD")
    default_caller_id = CharField(max_length=32, null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "accounts"
