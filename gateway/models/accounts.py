"""Customer accounts: the unit of isolation, billing and API access."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from peewee import SQL, AutoField, BooleanField, CharField, IntegerField, TextField

from .db import BaseModel
from .fields import EncryptedTextField, JSONTextField, MoneyField, UTCDateTimeField, utcnow

ACCOUNT_STATUSES = ("active", "suspended")

# After a rotation the previous webhook secret stays valid this long, so that a
# customer can deploy the new one without dropping signed requests meanwhile.
WEBHOOK_SECRET_OVERLAP = timedelta(hours=24)

WEBHOOK_SECRET_PREFIX = "whsec_"


def generate_webhook_secret() -> str:
    """A new webhook signing secret: ``whsec_`` and 256 random bits, url-safe."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


class Account(BaseModel):
    """One customer.

    ``webhook_secret`` is the HMAC key the gateway signs its webhooks with: unlike
    an API secret, which we only ever verify, it cannot be kept as a hash. The same
    holds for the provider credentials (``elevenlabs_api_key``, ``vapi_api_key``),
    which the media connectors send to those providers on the account's behalf. So
    they are stored encrypted (``EncryptedTextField``, ``gateway.secret_keys``) and
    read back in clear. None of them is ever printed in full except where an admin
    asked for it (creation, rotation, ``show``).
    """

    id = AutoField()
    name = CharField(max_length=255, unique=True)
    status = CharField(max_length=16, default="active")
    api_enabled = BooleanField(default=True)
    region = CharField(max_length=8, default="US")  # ISO 3166 code, for numbering
    timezone = CharField(max_length=64, default="UTC")  # IANA name, for displayed timestamps
    currency = CharField(max_length=3, default="USD")  # ISO 4217 code of ``balance``
    default_caller_id = CharField(max_length=32, null=True)
    created_at = UTCDateTimeField(default=utcnow)
    # Where a call's media goes (or whom to ask) when neither the request nor the
    # number names a target.
    default_socket_url = TextField(null=True)
    default_webhook_url = TextField(null=True)
    webhook_secret = EncryptedTextField(default=generate_webhook_secret)
    webhook_secret_previous = EncryptedTextField(null=True)
    webhook_secret_rotated_at = UTCDateTimeField(null=True)
    # Requests per minute (``gateway.api.ratelimit.limit_for``): ``rate_limits`` per surface
    # (``{"v1": 300}``, by ``Call.surface`` value), else ``rate_limit_per_minute`` on every
    # surface, else each surface's contract default; 0: no limit.
    rate_limit_per_minute = IntegerField(null=True)
    rate_limits = JSONTextField(null=True)
    balance = MoneyField(max_digits=14, decimal_places=4, default=Decimal("0.0000"))
    elevenlabs_api_key = EncryptedTextField(null=True)
    vapi_api_key = EncryptedTextField(null=True)
    # The agent a bare ``elevenlabs`` target (``vapi``: assistant) talks to, unless the
    # call's number names its own (``gateway.calls.bot_target.provider_ref``).
    elevenlabs_agent_id = CharField(max_length=128, null=True)
    vapi_assistant_id = CharField(max_length=128, null=True)
    # Where a press-1 call's "connect_agent" transfers to (public calling API): a number,
    # an extension or a SIP URI, as ``CallController.transfer`` takes it.
    agent_destination = CharField(max_length=255, null=True)
    # Where the account may transfer calls (``gateway.calls.transfer_policy``): number
    # rules and SIP domains, lists; None: the defaults (every E.164 number, no SIP URI).
    transfer_numbers = JSONTextField(null=True)
    transfer_sip_domains = JSONTextField(null=True)
    # What a call whose transfer failed does once it is back (``transfer_policy``):
    # ``bot`` goes back to its bot, ``hangup`` ends with the failure's cause.
    on_transfer_failure = CharField(max_length=16, default="bot", constraints=[SQL("DEFAULT 'bot'")])

    class Meta:
        table_name = "accounts"

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def rotate_webhook_secret(self, now: datetime | None = None) -> str:
        """Replace the webhook secret, keep the old one for the overlap window; return the new one."""
        self.webhook_secret_previous = self.webhook_secret
        self.webhook_secret = generate_webhook_secret()
        self.webhook_secret_rotated_at = now or utcnow()
        self.save(
            only=[
                Account.webhook_secret,
                Account.webhook_secret_previous,
                Account.webhook_secret_rotated_at,
            ]
        )
        return self.webhook_secret

    def previous_webhook_secret_expires_at(self) -> datetime | None:
        """When the previous webhook secret stops being valid; None if there is none."""
        if self.webhook_secret_previous is None or self.webhook_secret_rotated_at is None:
            return None
        return self.webhook_secret_rotated_at + WEBHOOK_SECRET_OVERLAP

    def webhook_secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets valid now: the current one first, then the previous within its window.

        A signer uses the first; a scheme that carries several signatures may add
        the second; a verifier accepts either.
        """
        valid = [self.webhook_secret]
        expires = self.previous_webhook_secret_expires_at()
        if expires is not None and (now or utcnow()) < expires:
            valid.append(self.webhook_secret_previous)
        return valid
