"""Schema migrations: an append-only list of steps, recorded in ``schema_version``.

Step N (1-based) runs once per database, in its own transaction, with the
database as its only argument. A new step goes at the end of ``MIGRATIONS`` and
changes the schema with ``playhouse.migrate``::

    from playhouse import migrate as pw_migrate

    def _add_call_recording_url(db):
        migrator = pw_migrate.SchemaMigrator.from_database(db)
        pw_migrate.migrate(
            migrator.add_column("calls", "recording_url", TextField(null=True)))

A step that creates tables declares frozen copies of them on ``_frozen_base(db)``, as
step 1 does (``_key_of`` stands for a table its foreign keys point to), and never uses
the application models: those keep changing, and step 1 run on a
fresh database must still create the tables as they were at version 1, or step
2 would then add a column that already exists. ``tests/test_models.py`` checks
that a migrated database matches the models.
"""
from __future__ import annotations

import json
import secrets
from contextlib import contextmanager

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    CharField,
    CompositeKey,
    Database,
    DatabaseProxy,
    DateField,
    DateTimeField,
    DecimalField,
    FloatField,
    Field,
    ForeignKeyField,
    IntegerField,
    Model,
    PostgresqlDatabase,
    SchemaManager,
    Table,
    TextField,
)
from playhouse import migrate as pw_migrate

from gateway.secret_keys import keys_for

from .db import BaseModel
from .fields import UTCDateTimeField, utcnow

# Any constant shared by all processes; keeps two of them from migrating at once.
_POSTGRES_LOCK_KEY = 0x766F6963656777  # "voicegw"


class SchemaVersion(BaseModel):
    """One applied migration step. Its shape never changes."""

    version = IntegerField(primary_key=True)
    name = CharField(max_length=100)
    applied_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "schema_version"


def _frozen_base(db: Database) -> type[Model]:
    """The base of one step's frozen models, bound to ``db`` (never the application's)."""
    class Frozen(Model):
        class Meta:
            database = db

    return Frozen


def _key_of(base: type[Model], table: str, key: str = "id", field: Field | None = None) -> type[Model]:
    """An existing table as a step's new foreign keys see it: its primary key ``key``
    alone (an ``AutoField`` unless ``field`` is given)."""
    meta = type("Meta", (), {"table_name": table})
    return type(f"Key_{table}", (base,), {key: field or AutoField(), "Meta": meta})


def _create_initial_tables(db: Database) -> None:
    Frozen = _frozen_base(db)

    class Account(Frozen):
        id = AutoField()
        name = CharField(max_length=255, unique=True)
        status = CharField(max_length=16)
        api_enabled = BooleanField()
        region = CharField(max_length=8)
        timezone = CharField(max_length=64)
        currency = CharField(max_length=3)
        default_caller_id = CharField(max_length=32, null=True)
        created_at = DateTimeField()

        class Meta:
            table_name = "accounts"

    class Call(Frozen):
        uuid = CharField(max_length=36, primary_key=True)
        account = ForeignKeyField(Account, index=False)
        direction = CharField(max_length=8)
        from_number = CharField(max_length=32)
        to_number = CharField(max_length=32)
        caller_id_name = CharField(max_length=64)
        status = CharField(max_length=16)
        end_reason = CharField(max_length=16, null=True)
        hangup_cause = CharField(max_length=64, null=True)
        node = CharField(max_length=255)
        job_uuid = CharField(max_length=36, null=True)
        socket_url = TextField(null=True)
        webhook_url = TextField(null=True)
        custom_args = TextField()
        duration_sec = IntegerField(null=True)
        billsec = IntegerField(null=True)
        created_at = DateTimeField()
        ringing_at = DateTimeField(null=True)
        answered_at = DateTimeField(null=True)
        ended_at = DateTimeField(null=True)
        updated_at = DateTimeField()

        class Meta:
            table_name = "calls"
            indexes = (
                (("account", "created_at"), False),
                (("account", "status", "created_at"), False),
            )

    class CallEvent(Frozen):
        id = AutoField()
        call = ForeignKeyField(Call, on_delete="CASCADE", index=False)
        seq = IntegerField()
        kind = CharField(max_length=16)
        from_status = CharField(max_length=16, null=True)
        to_status = CharField(max_length=16, null=True)
        detail = TextField()
        at = DateTimeField()

        class Meta:
            table_name = "call_events"
            indexes = ((("call", "seq"), True),)

    db.create_tables([Account, Call, CallEvent], safe=True)


def _add_keys_agents_numbers(db: Database) -> None:
    """Account settings and secrets; the api_keys, agents and phone_numbers tables.

    SQLite adds a NOT NULL column only with a non-NULL default and otherwise
    rebuilds the whole table, which fails while ``calls`` rows reference it;
    so each NOT NULL column comes with a server default (``allow_not_null``).
    ``webhook_secret`` starts as '' and every existing account then gets its own
    random secret; the application always supplies one, the '' is never used.
    """
    migrator = pw_migrate.SchemaMigrator.from_database(db)

    def not_null(field, default):
        field.constraints = [SQL(f"DEFAULT {default}")]
        return field

    pw_migrate.migrate(
        migrator.add_column("accounts", "default_socket_url", TextField(null=True)),
        migrator.add_column("accounts", "default_webhook_url", TextField(null=True)),
        migrator.add_column(
            "accounts", "webhook_secret", not_null(CharField(max_length=64), "''"),
            allow_not_null=True),
        migrator.add_column(
            "accounts", "webhook_secret_previous", CharField(max_length=64, null=True)),
        migrator.add_column("accounts", "webhook_secret_rotated_at", DateTimeField(null=True)),
        migrator.add_column(
            "accounts", "rate_limit_per_minute", not_null(IntegerField(), 120),
            allow_not_null=True),
        migrator.add_column(
            "accounts", "balance", not_null(DecimalField(max_digits=14, decimal_places=4), 0),
            allow_not_null=True),
        migrator.add_column("accounts", "elevenlabs_api_key", TextField(null=True)),
        migrator.add_column("accounts", "vapi_api_key", TextField(null=True)),
    )

    Frozen = _frozen_base(db)

    class Account(Frozen):
        id = AutoField()
        webhook_secret = CharField(max_length=64)

        class Meta:
            table_name = "accounts"

    for (account_id,) in Account.select(Account.id).tuples():
        secret = "whsec_" + secrets.token_urlsafe(32)
        Account.update(webhook_secret=secret).where(Account.id == account_id).execute()

    class Agent(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, index=False)
        key = CharField(max_length=64)
        name = CharField(max_length=255)
        language = CharField(max_length=16)
        agent_type = CharField(max_length=16)
        driver = CharField(max_length=16)
        driver_ref = TextField()
        active = BooleanField()
        created_at = DateTimeField()

        class Meta:
            table_name = "agents"
            indexes = ((("account", "key"), True),)

    class ApiKey(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account)
        publishable_id = CharField(max_length=64, unique=True)
        secret_hash = CharField(max_length=64, unique=True)
        secret_prefix = CharField(max_length=16)
        scopes = TextField()
        owner_agent = ForeignKeyField(Agent, null=True, on_delete="CASCADE")
        name = CharField(max_length=100, null=True)
        created_at = DateTimeField()
        rotated_at = DateTimeField(null=True)
        last_used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

        class Meta:
            table_name = "api_keys"

    class PhoneNumber(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account)
        e164 = CharField(max_length=16, unique=True)
        route = CharField(max_length=8)
        socket_url = TextField(null=True)
        agent = ForeignKeyField(Agent, null=True)
        webhook_url = TextField(null=True)
        active = BooleanField()
        created_at = DateTimeField()

        class Meta:
            table_name = "phone_numbers"

    db.create_tables([Agent, ApiKey, PhoneNumber], safe=True)


def _add_call_agent_fields(db: Database) -> None:
    """What the agent-call surface (/v1) keeps on a call: the agent it was handed to, the
    contact's name, the transcript, the analysis and the recording; and which surface
    placed it. All nullable, so SQLite adds them in place."""
    Frozen = _frozen_base(db)

    Agent = _key_of(Frozen, "agents")

    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column(
            "calls", "agent_id",
            ForeignKeyField(Agent, field=Agent.id, null=True, on_delete="SET NULL", index=False)),
        migrator.add_column("calls", "contact_name", CharField(max_length=255, null=True)),
        migrator.add_column("calls", "transcript", TextField(null=True)),
        migrator.add_column("calls", "analysis", TextField(null=True)),
        migrator.add_column("calls", "recording_url", TextField(null=True)),
        migrator.add_column("calls", "surface", CharField(max_length=16, null=True)),
    )


def _add_webhook_outbox(db: Database) -> None:
    """The webhook outbox (deliveries and their attempts), the accounts' webhook
    subscriptions, and the provider ids of calls (completion ingest)."""
    Frozen = _frozen_base(db)

    Account = _key_of(Frozen, "accounts")

    Call = _key_of(Frozen, "calls", "uuid", CharField(max_length=36, primary_key=True))

    class WebhookSubscription(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        surface = CharField(max_length=16)
        url = TextField(null=True)
        events = TextField(null=True)
        active = BooleanField()
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            table_name = "webhook_subscriptions"
            indexes = ((("account", "surface"), True),)

    class WebhookDelivery(Frozen):
        id = AutoField()
        event_id = CharField(max_length=40, unique=True)
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        call_uuid = CharField(max_length=36, null=True)
        surface = CharField(max_length=16)
        event_type = CharField(max_length=64)
        url = TextField()
        body = TextField()
        headers = TextField()
        status = CharField(max_length=16)
        attempts = IntegerField()
        next_attempt_at = DateTimeField()
        last_code = IntegerField(null=True)
        last_error = TextField(null=True)
        created_at = DateTimeField()
        queued_at = DateTimeField()
        delivered_at = DateTimeField(null=True)

        class Meta:
            table_name = "webhook_deliveries"
            indexes = (
                (("status", "next_attempt_at"), False),
                (("call_uuid", "id"), False),
                (("account", "id"), False),
            )

    class WebhookAttempt(Frozen):
        id = AutoField()
        delivery = ForeignKeyField(WebhookDelivery, on_delete="CASCADE")
        number = IntegerField()
        at = DateTimeField()
        code = IntegerField(null=True)
        latency_ms = IntegerField()
        error = TextField(null=True)

        class Meta:
            table_name = "webhook_attempts"

    class ProviderCall(Frozen):
        id = AutoField()
        provider_call_id = CharField(max_length=128, unique=True)
        call = ForeignKeyField(Call, on_delete="CASCADE")
        provider = CharField(max_length=32, null=True)
        created_at = DateTimeField()
        completed_at = DateTimeField(null=True)
        status = CharField(max_length=32, null=True)
        payload = TextField(null=True)

        class Meta:
            table_name = "provider_calls"

    db.create_tables([WebhookSubscription, WebhookDelivery, WebhookAttempt, ProviderCall], safe=True)


def _add_public_calling_api(db: Database) -> None:
    """The public calling API (/api/public/v1): the audio library, saved campaigns, API runs,
    voice verification requests, recordings, per-account rate-limit windows, call rates
    and the wallet's ledger; per-day call counts (the list's totals); each call's run and reference_id, with the indexes of the
    list's filters; an account's press-1 agent destination. New columns are nullable, so
    SQLite adds them in place."""
    Frozen = _frozen_base(db)

    Account = _key_of(Frozen, "accounts")

    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("accounts", "agent_destination", CharField(max_length=255, null=True)),
        migrator.add_column("calls", "campaign_id", IntegerField(null=True)),
        migrator.add_column("calls", "reference_id", CharField(max_length=120, null=True)),
        migrator.add_index("calls", ("account_id", "direction", "created_at"), False),
        migrator.add_index("calls", ("account_id", "to_number", "created_at"), False),
        migrator.add_index("calls", ("account_id", "from_number", "created_at"), False),
        migrator.add_index("calls", ("account_id", "reference_id"), False),
    )

    class AudioClip(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE")
        name = CharField(max_length=255)
        path = TextField()
        duration_ms = IntegerField()
        size_bytes = IntegerField()
        original_name = CharField(max_length=255, null=True)
        created_at = DateTimeField()

        class Meta:
            table_name = "audio_clips"

    class SavedCampaign(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE")
        name = CharField(max_length=255)
        type = CharField(max_length=16)
        status = CharField(max_length=16)
        audio = ForeignKeyField(AudioClip, null=True, on_delete="SET NULL")
        dtmf_map = TextField(null=True)
        caller_id = CharField(max_length=32, null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            table_name = "saved_campaigns"

    class PublicRun(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE")
        type = CharField(max_length=16)
        campaign = ForeignKeyField(SavedCampaign, null=True, on_delete="SET NULL")
        audio = ForeignKeyField(AudioClip, null=True, on_delete="SET NULL")
        audio_path = TextField(null=True)
        dtmf_map = TextField(null=True)
        to_number = CharField(max_length=32)
        call_uuid = CharField(max_length=36, null=True, unique=True)
        reference_id = CharField(max_length=120, null=True)
        pressed = CharField(max_length=8, null=True)
        action = CharField(max_length=32, null=True)
        created_at = DateTimeField()

        class Meta:
            table_name = "public_runs"

    class OtpRequest(Frozen):
        id = CharField(max_length=36, primary_key=True)
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        to_number = CharField(max_length=32)
        code_hash = CharField(max_length=64)
        salt = CharField(max_length=32)
        code_length = IntegerField()
        status = CharField(max_length=16)
        attempts = IntegerField()
        max_attempts = IntegerField()
        expires_at = DateTimeField()
        verified_at = DateTimeField(null=True)
        call_uuid = CharField(max_length=36, null=True, unique=True)
        reference_id = CharField(max_length=120, null=True)
        created_at = DateTimeField()

        class Meta:
            table_name = "otp_requests"
            indexes = ((("account", "to_number", "created_at"), False),)

    class Recording(Frozen):
        call_uuid = CharField(max_length=36, primary_key=True)
        account = ForeignKeyField(Account, on_delete="CASCADE")
        path = TextField()
        content_type = CharField(max_length=32)
        created_at = DateTimeField()

        class Meta:
            table_name = "recordings"

    class RateLimitWindow(Frozen):
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        window_start = IntegerField()
        hits = IntegerField()

        class Meta:
            table_name = "rate_limit_windows"
            primary_key = CompositeKey("account", "window_start")

    class CallRate(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        prefix = CharField(max_length=16)
        per_minute = DecimalField(max_digits=14, decimal_places=4)
        pulse_sec = IntegerField()
        created_at = DateTimeField()

        class Meta:
            table_name = "call_rates"
            indexes = ((("account", "prefix"), True),)

    class LedgerEntry(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        kind = CharField(max_length=16)
        amount = DecimalField(max_digits=14, decimal_places=4)
        balance_after = DecimalField(max_digits=14, decimal_places=4)
        call_uuid = CharField(max_length=36, null=True, unique=True)
        billsec = IntegerField(null=True)
        per_minute = DecimalField(max_digits=14, decimal_places=4, null=True)
        pulse_sec = IntegerField(null=True)
        description = TextField(null=True)
        created_at = DateTimeField()

        class Meta:
            table_name = "ledger_entries"
            indexes = ((("account", "id"), False),)

    class CallDayCount(Frozen):
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        day = DateField()
        direction = CharField(max_length=8)
        status = CharField(max_length=16)
        n = IntegerField()

        class Meta:
            table_name = "call_day_counts"
            primary_key = CompositeKey("account", "day", "direction", "status")

    class CallCountMark(Frozen):
        account = ForeignKeyField(Account, primary_key=True, on_delete="CASCADE")
        rolled_until = DateField()

        class Meta:
            table_name = "call_count_marks"

    db.create_tables([AudioClip, SavedCampaign, PublicRun, OtpRequest, Recording, RateLimitWindow,
                      CallRate, LedgerEntry, CallDayCount, CallCountMark], safe=True)


def _add_refused_calls(db: Database) -> None:
    """Inbound calls refused without an answer (``RefusedCall``)."""
    Frozen = _frozen_base(db)

    Account = _key_of(Frozen, "accounts")

    class RefusedCall(Frozen):
        id = AutoField()
        call_uuid = CharField(max_length=36)
        account = ForeignKeyField(Account, null=True, on_delete="CASCADE", index=False)
        node = CharField(max_length=255)
        did = CharField(max_length=32)
        from_number = CharField(max_length=32)
        caller_id_name = CharField(max_length=64, default="")
        reason = CharField(max_length=255)
        hangup_cause = CharField(max_length=64)
        created_at = DateTimeField()

        class Meta:
            table_name = "refused_calls"
            indexes = ((("created_at",), False), (("account", "created_at"), False))

    db.create_tables([RefusedCall], safe=True)


def _dead_webhook_deliveries(db: Database) -> None:
    """Webhook deliveries whose retries ran out are ``dead`` (the dead-letter state),
    no longer ``failed``."""
    db.execute_sql("UPDATE webhook_deliveries SET status = 'dead' WHERE status = 'failed'")


def _add_otp_guesses(db: Database) -> None:
    """Wrong verification codes per number (``OtpGuess``), for the per-number guess cap."""
    Frozen = _frozen_base(db)

    Account = _key_of(Frozen, "accounts")

    class OtpGuess(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        to_number = CharField(max_length=32)
        at = DateTimeField()

        class Meta:
            table_name = "otp_guesses"
            indexes = ((("account", "to_number", "at"), False),)

    db.create_tables([OtpGuess], safe=True)


def _add_transfer_policy(db: Database) -> None:
    """Each account's transfer policy (``gateway.calls.transfer_policy``): the number rules
    and SIP domains it may transfer to, JSON lists; NULL means the defaults."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("accounts", "transfer_numbers", TextField(null=True)),
        migrator.add_column("accounts", "transfer_sip_domains", TextField(null=True)),
    )


def _add_call_end_upper_bound(db: Database) -> None:
    """``calls.ended_at_upper_bound``: the call ended while the gateway was not listening,
    so its end time, billsec and duration are upper bounds (``states.channel_vanished``)."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(migrator.add_column(
        "calls", "ended_at_upper_bound", BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])))


def _encrypt_account_secrets(db: Database) -> None:
    """Webhook signing secrets and provider API keys are stored encrypted
    (``gateway.secret_keys``): every one stored in clear is encrypted with the first key.

    The webhook secret columns were VARCHAR(64), too short for an encrypted value, so
    each is replaced by a TEXT column: added, filled, the old one dropped, the new one
    renamed (SQLite changes a column's type only by rebuilding the table, which fails
    while ``calls`` rows reference it). A key is needed only when there is something to
    encrypt: a fresh database is migrated without one.
    """
    moved = {"webhook_secret": "webhook_secret_encrypted",
             "webhook_secret_previous": "webhook_secret_previous_encrypted"}
    in_place = ("elevenlabs_api_key", "vapi_api_key")
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("accounts", "webhook_secret_encrypted",
                            TextField(constraints=[SQL("DEFAULT ''")]), allow_not_null=True),
        migrator.add_column("accounts", "webhook_secret_previous_encrypted", TextField(null=True)),
    )
    accounts = Table("accounts").bind(db)
    rows = list(accounts.select(accounts.c.id, *(getattr(accounts.c, name) for name in (*moved, *in_place))).dicts())
    keys = keys_for(db) if any(row[name] is not None for row in rows for name in (*moved, *in_place)) else None
    for row in rows:
        sealed = {getattr(accounts.c, moved.get(name, name)): keys.encrypt(row[name])
                  for name in (*moved, *in_place) if row[name] is not None}
        if sealed:
            accounts.update(sealed).where(accounts.c.id == row["id"]).execute()
    pw_migrate.migrate(
        *(migrator.drop_column("accounts", old) for old in moved),
        *(migrator.rename_column("accounts", new, old) for old, new in moved.items()),
    )


def _add_on_transfer_failure(db: Database) -> None:
    """``accounts.on_transfer_failure``: what a call whose transfer failed does when the
    dialplan parks it again (``gateway.calls.transfer_policy``); every account so far goes
    back to its bot, the default.  A NOT NULL column with a DEFAULT in one statement: the
    nullable-then-NOT-NULL way rebuilds the table on SQLite, which ``calls`` rows forbid."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(migrator.add_column(
        "accounts", "on_transfer_failure", CharField(max_length=16, constraints=[SQL("DEFAULT 'bot'")]),
        allow_not_null=True))


def _add_rate_limit_buckets(db: Database) -> None:
    """Every surface counts its requests in ``rate_limit_windows`` (``gateway.api.ratelimit``),
    in the ``bucket`` its rate-limit policy names; the key is (account, bucket,
    window_start). SQLite changes a primary key only by rebuilding the table, so the table
    is made again: its rows are the counts of the current minute, which start afresh."""
    class Frozen(Model):
        class Meta:
            database = db

    class Account(Frozen):
        id = AutoField()

        class Meta:
            table_name = "accounts"

    class RateLimitWindow(Frozen):
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        bucket = CharField(max_length=16)
        window_start = IntegerField()
        hits = IntegerField()

        class Meta:
            table_name = "rate_limit_windows"
            primary_key = CompositeKey("account", "bucket", "window_start")

    db.drop_tables([RateLimitWindow])
    db.create_tables([RateLimitWindow])


def _add_webhook_header_profiles(db: Database) -> None:
    """``header_profile`` on webhook subscriptions and deliveries: which headers carry the
    event and its signature (``gateway.webhooks.profiles``). Every existing one keeps the
    gateway's own (``gateway``). NOT NULL with a DEFAULT in one statement, as for
    ``on_transfer_failure``."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(*(
        migrator.add_column(table, "header_profile",
                            CharField(max_length=32, constraints=[SQL("DEFAULT 'gateway'")]), allow_not_null=True)
        for table in ("webhook_subscriptions", "webhook_deliveries")))


def _add_rate_limits_per_surface(db: Database) -> None:
    """Each surface has its contract's default rate limit (``gateway.api.ratelimit``), so
    an account's ``rate_limit_per_minute`` becomes an override, NULL when it has none:
    the former default of every account, 120, is taken for "none" (an operator who set
    120 on purpose gets each surface's default, which is 120 but for ``/v1``'s 60).
    ``rate_limits`` holds per-surface overrides. The column is made nullable by the way
    ``_encrypt_account_secrets`` changes a type: added, filled, the old one dropped, the
    new one renamed. The windows of the former shared ``key`` bucket are dropped."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("accounts", "rate_limit_override", IntegerField(null=True)),
        migrator.add_column("accounts", "rate_limits", TextField(null=True)),
    )
    accounts = Table("accounts").bind(db)
    (accounts.update({accounts.c.rate_limit_override: accounts.c.rate_limit_per_minute})
     .where(accounts.c.rate_limit_per_minute != 120).execute())
    pw_migrate.migrate(
        migrator.drop_column("accounts", "rate_limit_per_minute"),
        migrator.rename_column("accounts", "rate_limit_override", "rate_limit_per_minute"),
    )
    windows = Table("rate_limit_windows").bind(db)
    windows.delete().where(windows.c.bucket == "key").execute()


def _add_provider_reported_duration(db: Database) -> None:
    """``provider_calls.duration``: the duration a completion report gave, kept beside the
    call's own (``gateway.webhooks.provider``); filled from the reports stored so far."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(migrator.add_column("provider_calls", "duration", IntegerField(null=True)))
    links = Table("provider_calls").bind(db)
    for row in links.select(links.c.id, links.c.payload).where(links.c.payload.is_null(False)).dicts():
        try:
            duration = json.loads(row["payload"]).get("duration")
        except (ValueError, AttributeError):
            continue
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) and 0 <= duration < 10 ** 7:
            links.update({links.c.duration: int(round(duration))}).where(links.c.id == row["id"]).execute()


def _add_provider_agent_ids(db: Database) -> None:
    """The ElevenLabs agent and Vapi assistant a bare ``elevenlabs``/``vapi`` media target
    talks to: the account's defaults, and each phone number's own, over them."""
    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(*(migrator.add_column(table, column, CharField(max_length=128, null=True))
                         for table in ("accounts", "phone_numbers")
                         for column in ("elevenlabs_agent_id", "vapi_assistant_id")))


def _add_voice_agents(db: Database) -> None:
    """The voice-agent admin surface: an agent's creator (``agents.owner_agent_id``) and
    conversation profile (``agents.profile``, JSON, ``'{}'`` for the agents so far); its
    env vars, tools, knowledge-base documents and their links, and the tool runs."""


def _add_voice_campaigns(db: Database) -> None:
    """Voice campaigns that dial (``gateway.dialer``): campaigns, their contacts and each
    contact's attempts, the human-approved actions that start, pause and stop them with
    their history, and each account's do-not-call list."""
    Frozen = _frozen_base(db)

    Account = _key_of(Frozen, "accounts")
    Agent = _key_of(Frozen, "agents")
    Call = _key_of(Frozen, "calls", "uuid", CharField(max_length=36, primary_key=True))

    migrator = pw_migrate.SchemaMigrator.from_database(db)
    pw_migrate.migrate(
        migrator.add_column("agents", "owner_agent_id",
                            ForeignKeyField(Agent, field=Agent.id, null=True, on_delete="SET NULL")),
        migrator.add_column("agents", "profile", TextField(constraints=[SQL("DEFAULT '{}'")]),
                            allow_not_null=True),
    )

    class AgentEnvVar(Frozen):
        id = AutoField()
        agent = ForeignKeyField(Agent, on_delete="CASCADE", index=False)
        name = CharField(max_length=64)
        value = TextField()
        updated_at = DateTimeField()

        class Meta:
            table_name = "agent_env_vars"
            indexes = ((("agent", "name"), True),)

    class AgentTool(Frozen):
        id = AutoField()
        agent = ForeignKeyField(Agent, on_delete="CASCADE", index=False)
        name = CharField(max_length=64)
        kind = CharField(max_length=16)
        description = TextField()
        method = CharField(max_length=8)
        url = TextField()
        headers = TextField()
        parameters = TextField()
        config = TextField()
        created_at = DateTimeField()

        class Meta:
            table_name = "agent_tools"
            indexes = ((("agent", "name"), True),)

    class KnowledgeDocument(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        owner_agent = ForeignKeyField(Agent, null=True, on_delete="SET NULL")
        name = CharField(max_length=255)
        kind = CharField(max_length=8)
        url = TextField(null=True)
        status = CharField(max_length=16)
        failure_reason = TextField(null=True)
        text = TextField()
        content_type = CharField(max_length=128, null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            table_name = "knowledge_documents"
            indexes = ((("account", "created_at"), False),)

    class AgentKnowledge(Frozen):
        agent = ForeignKeyField(Agent, on_delete="CASCADE")
        document = ForeignKeyField(KnowledgeDocument, on_delete="CASCADE")

        class Meta:
            table_name = "agent_knowledge"
            primary_key = CompositeKey("agent", "document")

    class ToolRun(Frozen):
        id = AutoField()
        agent = ForeignKeyField(Agent, on_delete="CASCADE")
        call = ForeignKeyField(Call, field=Call.uuid, null=True, on_delete="CASCADE")
        tool_name = CharField(max_length=64)
        parameters = TextField()
        result = TextField()
        is_error = BooleanField()
        duration_ms = IntegerField()
        started_at = DateTimeField()

        class Meta:
            table_name = "tool_runs"

    db.create_tables([AgentEnvVar, AgentTool, KnowledgeDocument, AgentKnowledge, ToolRun])


    ApiKey = _key_of(Frozen, "api_keys")

    class VoiceCampaign(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE")
        owner_agent = ForeignKeyField(Agent, null=True, on_delete="SET NULL")
        agent = ForeignKeyField(Agent, on_delete="CASCADE")
        name = CharField(max_length=255)
        from_number = CharField(max_length=32)
        calls_per_second = FloatField()
        max_concurrent = IntegerField()
        max_attempts = IntegerField()
        retry_backoff_sec = IntegerField()
        window_days = TextField()
        window_start = CharField(max_length=5)
        window_end = CharField(max_length=5)
        timezone = CharField(max_length=64)
        status = CharField(max_length=16)
        status_reason = TextField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        started_at = DateTimeField(null=True)
        completed_at = DateTimeField(null=True)

        class Meta:
            table_name = "voice_campaigns"
            indexes = ((("status",), False),)

    class CampaignContact(Frozen):
        id = AutoField()
        campaign = ForeignKeyField(VoiceCampaign, on_delete="CASCADE", index=False)
        phone = CharField(max_length=32)
        name = CharField(max_length=255, null=True)
        variables = TextField()
        timezone = CharField(max_length=64, null=True)
        state = CharField(max_length=16)
        attempts = IntegerField()
        last_call_uuid = CharField(max_length=36, null=True)
        last_outcome = CharField(max_length=32, null=True)
        next_attempt_at = DateTimeField()
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            table_name = "campaign_contacts"
            indexes = ((("campaign", "phone"), True), (("campaign", "state", "next_attempt_at"), False))

    class ContactAttempt(Frozen):
        id = AutoField()
        contact = ForeignKeyField(CampaignContact, on_delete="CASCADE")
        campaign = ForeignKeyField(VoiceCampaign, on_delete="CASCADE", index=False)
        number = IntegerField()
        claimed_by = CharField(max_length=64)
        claimed_at = DateTimeField()
        sent_at = DateTimeField(null=True)
        call_uuid = CharField(max_length=36, null=True, unique=True)
        outcome = CharField(max_length=32, null=True)
        ended_at = DateTimeField(null=True)

        class Meta:
            table_name = "contact_attempts"
            indexes = ((("campaign", "claimed_at"), False),)

    class CampaignAction(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE")
        owner_agent = ForeignKeyField(Agent, null=True, on_delete="SET NULL")
        campaign = ForeignKeyField(VoiceCampaign, on_delete="CASCADE")
        kind = CharField(max_length=8)
        status = CharField(max_length=20)
        reason = TextField(null=True)
        requested_by_key = ForeignKeyField(ApiKey, null=True, on_delete="SET NULL")
        requested_by = CharField(max_length=255)
        decided_by = CharField(max_length=255, null=True)
        created_at = DateTimeField()
        decided_at = DateTimeField(null=True)
        executed_at = DateTimeField(null=True)

        class Meta:
            table_name = "campaign_actions"
            indexes = ((("status", "created_at"), False),)

    class CampaignActionEvent(Frozen):
        id = AutoField()
        action = ForeignKeyField(CampaignAction, on_delete="CASCADE")
        status = CharField(max_length=20)
        by = CharField(max_length=255)
        reason = TextField(null=True)
        at = DateTimeField()

        class Meta:
            table_name = "campaign_action_events"

    class DoNotCallEntry(Frozen):
        id = AutoField()
        account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
        phone = CharField(max_length=32)
        note = CharField(max_length=255, null=True)
        created_at = DateTimeField()

        class Meta:
            table_name = "do_not_call"
            indexes = ((("account", "phone"), True),)

    db.create_tables([VoiceCampaign, CampaignContact, ContactAttempt, CampaignAction, CampaignActionEvent,
                      DoNotCallEntry], safe=True)


MIGRATIONS = [
    _create_initial_tables,
    _add_keys_agents_numbers,
    _add_call_agent_fields,
    _add_webhook_outbox,
    _add_public_calling_api,
    _add_refused_calls,
    _dead_webhook_deliveries,
    _add_otp_guesses,
    _add_transfer_policy,
    _add_call_end_upper_bound,
    _encrypt_account_secrets,
    _add_on_transfer_failure,
    _add_rate_limit_buckets,
    _add_webhook_header_profiles,
    _add_rate_limits_per_surface,
    _add_provider_reported_duration,
    _add_provider_agent_ids,
    _add_voice_agents,
    _add_voice_campaigns,
]


def migrate(db: Database) -> list[int]:
    """Apply the steps ``db`` lacks; return their version numbers.

    Safe to run again, and from several processes at once: each step runs in a
    transaction that excludes other migrating processes and re-checks whether
    the step is still missing. Queries name ``db`` explicitly instead of
    rebinding models, so nothing global changes while it runs.
    """
    if isinstance(db, DatabaseProxy):
        db = db.obj
    with _exclusive(db):
        SchemaManager(SchemaVersion, db).create_all(safe=True)
        recorded = {row.version: row.name for row in SchemaVersion.select().execute(db)}
    applied = []
    for version, step in enumerate(MIGRATIONS, start=1):
        if version in recorded:
            if recorded[version] != step.__name__:
                raise RuntimeError(
                    f"schema_version {version} is {recorded[version]!r} but migration"
                    f" {version} is {step.__name__!r}: migrations are append-only"
                )
            continue
        with _exclusive(db):
            if SchemaVersion.select().where(SchemaVersion.version == version).exists(db):
                continue  # another process applied it meanwhile
            step(db)
            SchemaVersion.insert(version=version, name=step.__name__).execute(db)
        applied.append(version)
    return applied


@contextmanager
def _exclusive(db: Database):
    """A transaction that no other process runs through this function concurrently."""
    if isinstance(db, PostgresqlDatabase):
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_POSTGRES_LOCK_KEY,))
            yield
    else:
        # SQLite: take the write lock at BEGIN, not at the first write, so that two
        # processes cannot both see a step missing and both apply it.
        with db.atomic(lock_type="IMMEDIATE"):
            yield
