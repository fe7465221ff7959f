"""What the public calling API (``/api/public/v1``) keeps: the account's audio library, its
saved campaigns, the API runs that place calls, voice verification requests, call
recordings, and the per-account rate-limit windows of every surface.

``PublicRun``     one call placed through the API (``POST /calls``, a campaign trigger);
                  its id is the digits of the call's ``run_<n>`` unique id, and the call's
                  ``campaign_id`` column points back at it.
``OtpRequest``    one verification code sent by a voice call. The code is never stored:
                  only ``HMAC-SHA256(salt, code)`` with a per-request random salt.
``OtpGuess``      one wrong code submitted for a number, across all its requests: the
                  per-number guess cap counts these (``gateway.otp.service``).
``Recording``     the audio FreeSWITCH recorded for a call, as a file under the media
                  directory (``gateway.recordings``).
``RateLimitWindow``  requests an account made to the surfaces of one bucket in one fixed
                  minute; shared by every server process through the database
                  (``gateway.api.ratelimit``).
``CallDayCount``  how many calls an account made on one settled UTC day, by direction
                  and status, so that ``GET /calls`` counts and seeks without scanning
                  history (``gateway.calls.day_counts``); ``CallCountMark`` says up to
                  which day an account's counts are rolled up.
"""
from __future__ import annotations

from peewee import (
    AutoField,
    CharField,
    CompositeKey,
    DateField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from .accounts import Account
from .db import BaseModel
from .fields import JSONTextField, UTCDateTimeField, utcnow

#: Campaign types. Only ``audio_blast`` and ``press1`` can be triggered for one number;
#: ``otp`` campaigns are delivered through the OTP endpoints; ``voice_agent`` campaigns
#: (an AI agent calling a contact list) only run as a whole list.
CAMPAIGN_TYPES = ("audio_blast", "press1", "otp", "voice_agent")
CAMPAIGN_STATUSES = ("active", "paused", "archived")
#: The types ``POST /calls`` accepts (and a run can have).
RUN_TYPES = ("audio_blast", "press1", "otp")
#: What a press-1 call does with a pressed digit (``dtmf_map`` values).
DTMF_ACTIONS = ("connect_agent", "hangup")
#: Stored verification states; "expired" is computed from ``expires_at``.
OTP_STATUSES = ("pending", "verified", "failed")


class AudioClip(BaseModel):
    """A clip of an account's audio library, stored as 8 kHz mono 16-bit WAV: the file
    FreeSWITCH's ``playback`` is given."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="audio_clips", on_delete="CASCADE")
    name = CharField(max_length=255)
    path = TextField()
    duration_ms = IntegerField()
    size_bytes = IntegerField()
    original_name = CharField(max_length=255, null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "audio_clips"


class SavedCampaign(BaseModel):
    """A campaign configured for the account (admin CLI; the dashboard's job later)."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="saved_campaigns", on_delete="CASCADE")
    name = CharField(max_length=255)
    type = CharField(max_length=16)  # one of CAMPAIGN_TYPES
    status = CharField(max_length=16, default="active")  # one of CAMPAIGN_STATUSES
    audio = ForeignKeyField(AudioClip, null=True, on_delete="SET NULL")
    dtmf_map = JSONTextField(null=True)  # press1; None: the default {"1": "connect_agent"}
    caller_id = CharField(max_length=32, null=True)  # None: the account's default
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "saved_campaigns"


class PublicRun(BaseModel):
    """One API run: the script of one call (``audio_blast`` / ``press1``) and its outcome.

    The clip's path is copied here, so a run keeps working if the clip is deleted."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="public_runs", on_delete="CASCADE")
    type = CharField(max_length=16)  # one of RUN_TYPES
    campaign = ForeignKeyField(SavedCampaign, null=True, on_delete="SET NULL")
    audio = ForeignKeyField(AudioClip, null=True, on_delete="SET NULL")
    audio_path = TextField(null=True)
    dtmf_map = JSONTextField(null=True)
    to_number = CharField(max_length=32)
    call_uuid = CharField(max_length=36, null=True, unique=True)
    reference_id = CharField(max_length=120, null=True)
    pressed = CharField(max_length=8, null=True)  # press1: the digit the callee pressed
    action = CharField(max_length=32, null=True)  # press1: what was done with it
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "public_runs"


class OtpRequest(BaseModel):
    """One voice verification request; its id is the ``request_id`` clients see."""

    id = CharField(max_length=36, primary_key=True)
    # Indexed through the (account, to_number, created_at) index, which leads with it.
    account = ForeignKeyField(Account, backref="otp_requests", on_delete="CASCADE", index=False)
    to_number = CharField(max_length=32)
    code_hash = CharField(max_length=64)  # hex HMAC-SHA256(salt, code)
    salt = CharField(max_length=32)  # hex, 16 random bytes
    code_length = IntegerField()
    status = CharField(max_length=16, default="pending")  # one of OTP_STATUSES
    attempts = IntegerField(default=0)
    max_attempts = IntegerField(default=3)
    expires_at = UTCDateTimeField()
    verified_at = UTCDateTimeField(null=True)
    call_uuid = CharField(max_length=36, null=True, unique=True)
    reference_id = CharField(max_length=120, null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "otp_requests"
        # Verify by number (most recent pending) and the per-number send throttle.
        indexes = ((("account", "to_number", "created_at"), False),)


class OtpGuess(BaseModel):
    """One wrong verification code submitted for ``to_number`` (whichever request it was
    checked against); rows older than the cap's window are deleted as new ones come."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="otp_guesses", on_delete="CASCADE", index=False)
    to_number = CharField(max_length=32)
    at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "otp_guesses"
        indexes = ((("account", "to_number", "at"), False),)


class Recording(BaseModel):
    """The recording of one call: a file FreeSWITCH writes under the media directory."""

    call_uuid = CharField(max_length=36, primary_key=True)
    account = ForeignKeyField(Account, backref="recordings", on_delete="CASCADE")
    path = TextField()
    content_type = CharField(max_length=32)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "recordings"


class RateLimitWindow(BaseModel):
    """How many requests an account made to the surfaces of ``bucket`` in the minute
    starting at ``window_start`` (Unix seconds). Rows older than the current window are
    deleted as new ones start."""

    account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
    bucket = CharField(max_length=16)
    window_start = IntegerField()
    hits = IntegerField(default=0)

    class Meta:
        table_name = "rate_limit_windows"
        primary_key = CompositeKey("account", "bucket", "window_start")


class CallDayCount(BaseModel):
    """Calls of one account created on one UTC ``day``, by ``direction`` and ``status``."""

    account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
    day = DateField()
    direction = CharField(max_length=8)
    status = CharField(max_length=16)
    n = IntegerField(default=0)

    class Meta:
        table_name = "call_day_counts"
        primary_key = CompositeKey("account", "day", "direction", "status")


class CallCountMark(BaseModel):
    """Days before ``rolled_until`` have their ``CallDayCount`` rows for this account."""

    account = ForeignKeyField(Account, primary_key=True, on_delete="CASCADE")
    rolled_until = DateField()

    class Meta:
        table_name = "call_count_marks"
