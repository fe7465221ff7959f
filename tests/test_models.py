import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from peewee import IntegrityError, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase

from gateway.models import (
    ALL_MODELS,
    MIGRATIONS,
    WEBHOOK_SECRET_OVERLAP,
    Account,
    Agent,
    ApiKey,
    Call,
    CallEvent,
    PhoneNumber,
    RateLimitWindow,
    SchemaVersion,
    database_from_url,
    migrate,
    migrations,
    utcnow,
)


def make_account(name="acme"):
    return Account.create(name=name)


def make_call(account, **fields):
    fields = {
        "uuid": str(uuid.uuid4()),
        "account": account,
        "direction": "outbound",
        "from_number": "+15550000001",
        "to_number": "+15550000002",
        "node": "127.0.0.1:8021",
        **fields,
    }
    return Call.create(**fields)


# -- migrations ---------------------------------------------------------------


def test_migrate_is_idempotent(database):
    # The fixture already migrated this database.
    assert migrate(database) == []
    assert migrate(database) == []
    versions = [row.version for row in SchemaVersion.select().order_by(SchemaVersion.version)]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_migrate_fresh_database(tmp_path):
    db = database_from_url(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert migrate(db) == list(range(1, len(MIGRATIONS) + 1))
    assert migrate(db) == []
    assert set(db.get_tables()) == {"schema_version"} | {m._meta.table_name for m in ALL_MODELS}


def test_concurrent_migrations_apply_each_step_once(database_url, tmp_path):
    """Several processes starting at once against one fresh database."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        # Create the (empty) file first: turning a new file to WAL mode fails at
        # once, rather than waiting, if another connection holds a lock on it.
        first = database_from_url(url)
        first.connect()
        first.close()
    else:
        # A fresh schema inside the test database stands in for a fresh database.
        setup = database_from_url(database_url)
        setup.execute_sql("CREATE SCHEMA race")
        url = f"{database_url}?options=-csearch_path%3Drace"
    start = threading.Barrier(4)

    def run(_):
        db = database_from_url(url)
        start.wait()
        try:
            return migrate(db)
        finally:
            db.close()

    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run, range(4)))
        # every step applied exactly once, whichever process got to it first
        assert sorted(v for applied in results for v in applied) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        if not database_url.startswith("sqlite"):
            setup.execute_sql("DROP SCHEMA race CASCADE")
            setup.close_all()


def test_migrated_schema_matches_models(tmp_path):
    """A model change without its migration fails here."""
    migrated = database_from_url(f"sqlite:///{tmp_path / 'migrated.sqlite3'}")
    migrate(migrated)
    modelled = database_from_url(f"sqlite:///{tmp_path / 'modelled.sqlite3'}")
    with modelled.bind_ctx(ALL_MODELS):
        modelled.create_tables(ALL_MODELS)

    def shape(db, table):
        # Order- and name-blind: migrations append columns and name indexes their own way.
        foreign_keys = db.execute_sql(f'PRAGMA foreign_key_list("{table}")').fetchall()
        return (
            sorted((c.name, c.data_type, c.null, c.primary_key) for c in db.get_columns(table)),
            sorted((tuple(i.columns), i.unique) for i in db.get_indexes(table)),
            # (referenced table, from, to, ON UPDATE, ON DELETE)
            sorted(fk[2:7] for fk in foreign_keys),
        )

    for model in ALL_MODELS:
        table = model._meta.table_name
        assert shape(migrated, table) == shape(modelled, table), table


def test_upgrade_from_version_1_keeps_rows(fresh_url, monkeypatch):
    """Step 2 on a database with accounts and calls: each account gets its own webhook secret."""
    db = database_from_url(fresh_url)
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:1])
        assert migrate(db) == [1]
        p = db.param
        created = datetime(2025, 1, 1)
        for name in ("acme", "globex"):
            db.execute_sql(
                "INSERT INTO accounts (name, status, api_enabled, region, timezone, currency, created_at)"
                f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
                (name, "active", True, "US", "UTC", "USD", created),
            )
        db.execute_sql(
            "INSERT INTO calls (uuid, account_id, direction, from_number, to_number, caller_id_name,"
            " status, node, custom_args, created_at, updated_at)"
            f" VALUES ({p}, 1, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
            (str(uuid.uuid4()), "outbound", "+1", "+2", "", "completed", "n", "{}", created, created),
        )
        monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
        assert migrate(db) == list(range(2, len(MIGRATIONS) + 1))

        with db.bind_ctx(ALL_MODELS):
            accounts = list(Account.select().order_by(Account.id))
            assert [a.name for a in accounts] == ["acme", "globex"]
            secrets = [a.webhook_secret for a in accounts]
            assert all(s.startswith("whsec_") and len(s) > 40 for s in secrets)
            assert len(set(secrets)) == 2
            for account in accounts:
                assert (account.balance, account.rate_limit_per_minute) == (Decimal("0.0000"), None)
                assert account.default_socket_url is account.elevenlabs_api_key is None
                assert account.webhook_secret_previous is account.webhook_secret_rotated_at is None
                assert account.on_transfer_failure == "bot"  # a failed transfer goes back to the bot
            assert Call.select().count() == 1
            assert ApiKey.select().count() == Agent.select().count() == PhoneNumber.select().count() == 0
    finally:
        db.close_all() if hasattr(db, "close_all") else db.close()


def test_rate_limit_overrides_upgrade(fresh_url, monkeypatch):
    """The per-surface step: the former default 120 becomes "none" (each surface's
    contract default), any other limit stays the account's override on every surface;
    the windows of the former shared bucket go."""
    db = database_from_url(fresh_url)
    step = MIGRATIONS.index(migrations._add_rate_limits_per_surface)
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:step])
        migrate(db)
        p = db.param
        for name, limit in (("acme", 120), ("globex", 50), ("initech", 0)):
            db.execute_sql(
                "INSERT INTO accounts (name, status, api_enabled, region, timezone, currency, created_at,"
                f" webhook_secret, rate_limit_per_minute) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
                (name, "active", True, "US", "UTC", "USD", datetime(2025, 1, 1), "", limit))
        db.execute_sql(f"INSERT INTO rate_limit_windows (account_id, bucket, window_start, hits)"
                       f" VALUES (1, {p}, 60, 3), (1, {p}, 60, 4)", ("key", "public"))
        monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
        assert migrate(db) == list(range(step + 1, len(MIGRATIONS) + 1))
        with db.bind_ctx(ALL_MODELS):
            limits = Account.select(Account.rate_limit_per_minute, Account.rate_limits).order_by(Account.id)
            assert [(a.rate_limit_per_minute, a.rate_limits) for a in limits] == [(None, None), (50, None), (0, None)]
            assert [w.bucket for w in RateLimitWindow.select()] == ["public"]
    finally:
        db.close_all() if hasattr(db, "close_all") else db.close()


def test_migrate_refuses_a_changed_history(tmp_path, monkeypatch):
    db = database_from_url(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(db)

    def renamed(db):
        pass

    monkeypatch.setattr(migrations, "MIGRATIONS", [renamed])
    with pytest.raises(RuntimeError, match="migrations are append-only"):
        migrate(db)


# -- calls --------------------------------------------------------------------


def test_call_round_trip(database):
    account = make_account()
    ringing = datetime(2025, 3, 1, 12, 0, 1, 250000, tzinfo=timezone.utc)
    answered = datetime(2025, 3, 1, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    custom_args = {"lang": "fr", "nested": {"ids": [1, 2, 3], "ok": True}, "name": "Zoë ☎"}
    created = make_call(
        account,
        caller_id_name="Acme Support",
        status="completed",
        end_reason="completed",
        hangup_cause="NORMAL_CLEARING",
        job_uuid=str(uuid.uuid4()),
        socket_url="wss://bot.example.com/stream",
        webhook_url="https://hooks.example.com/calls",
        custom_args=custom_args,
        duration_sec=65,
        billsec=60,
        ringing_at=ringing,
        answered_at=answered,
        ended_at=answered + timedelta(minutes=1),
    )

    call = Call.get_by_id(created.uuid)
    assert call.account_id == account.id
    assert call.custom_args == custom_args
    assert (call.status, call.end_reason, call.hangup_cause) == (
        "completed",
        "completed",
        "NORMAL_CLEARING",
    )
    assert (call.duration_sec, call.billsec) == (65, 60)
    assert call.ringing_at == ringing and call.ringing_at.tzinfo == timezone.utc
    assert call.answered_at == datetime(2025, 3, 1, 12, 0, 5, tzinfo=timezone.utc)
    assert call.ended_at == datetime(2025, 3, 1, 12, 1, 5, tzinfo=timezone.utc)
    assert call.created_at == created.created_at
    for name in ("job_uuid", "socket_url", "webhook_url", "caller_id_name"):
        assert getattr(call, name) == getattr(created, name)


def test_call_defaults(database):
    before = utcnow()
    call = Call.get_by_id(make_call(make_account()).uuid)
    assert call.status == "queued"
    assert call.custom_args == {}
    assert call.caller_id_name == ""
    assert call.end_reason is call.ringing_at is call.duration_sec is call.socket_url is None
    assert before <= call.created_at <= utcnow()


def test_datetimes_compare_in_queries(database):
    account = make_account()
    old = make_call(account, created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    make_call(account, created_at=datetime(2025, 1, 3, tzinfo=timezone.utc))
    cutoff = datetime(2025, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=2)))  # 2025-01-01 23:00Z
    assert [c.uuid for c in Call.select().where(Call.created_at < cutoff)] == [old.uuid]


def test_naive_datetimes_are_refused(database):
    with pytest.raises(ValueError, match="naive datetime"):
        make_call(make_account(), ended_at=datetime(2025, 1, 1))


def test_save_stamps_updated_at(database):
    call = make_call(make_account(), created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    call.updated_at = call.created_at
    call.status = "ringing"
    call.save()
    assert Call.get_by_id(call.uuid).updated_at > call.created_at


def test_call_needs_an_existing_account(database):
    with pytest.raises(IntegrityError), database.atomic():
        make_call(Account(id=12345))


def test_account_defaults_and_unique_name(database):
    account = Account.get_by_id(make_account("acme").id)
    assert (account.status, account.api_enabled, account.region) == ("active", True, "US")
    assert (account.timezone, account.currency, account.default_caller_id) == ("UTC", "USD", None)
    with pytest.raises(IntegrityError), database.atomic():
        make_account("acme")


def test_account_settings_round_trip(database):
    account = Account.create(
        name="acme", balance=Decimal("1234567890.12346"), rate_limit_per_minute=30,
        default_socket_url="wss://bot.example.com", elevenlabs_api_key="xi-key",
    )
    stored = Account.get_by_id(account.id)
    assert stored.balance == Decimal("1234567890.1235") and str(stored.balance) == "1234567890.1235"
    assert str(Account.get_by_id(make_account("zero").id).balance) == "0.0000"
    largest = Account.create(name="rich", balance=Decimal("9999999999.9999"))
    assert str(Account.get_by_id(largest.id).balance) == "9999999999.9999"
    assert (stored.rate_limit_per_minute, stored.default_socket_url, stored.elevenlabs_api_key) == (
        30, "wss://bot.example.com", "xi-key")
    assert stored.is_active


def test_webhook_secrets(database):
    acme, globex = make_account("acme"), make_account("globex")
    assert acme.webhook_secret.startswith("whsec_") and acme.webhook_secret != globex.webhook_secret
    assert acme.webhook_secrets() == [acme.webhook_secret]
    assert acme.previous_webhook_secret_expires_at() is None

    old = acme.webhook_secret
    rotated_at = datetime(2025, 3, 1, tzinfo=timezone.utc)
    new = acme.rotate_webhook_secret(now=rotated_at)
    stored = Account.get_by_id(acme.id)
    assert (stored.webhook_secret, stored.webhook_secret_previous) == (new, old)
    assert stored.previous_webhook_secret_expires_at() == rotated_at + WEBHOOK_SECRET_OVERLAP
    assert stored.webhook_secrets(now=rotated_at + timedelta(hours=1)) == [new, old]
    assert stored.webhook_secrets(now=rotated_at + WEBHOOK_SECRET_OVERLAP) == [new]


def test_agent_keys_are_unique_per_account(database):
    acme, globex = make_account("acme"), make_account("globex")
    Agent.create(account=acme, key="akylai", name="Akylai", driver_ref="wss://a.example.com")
    Agent.create(account=globex, key="akylai", name="Akylai", driver_ref="wss://b.example.com")
    with pytest.raises(IntegrityError), database.atomic():
        Agent.create(account=acme, key="akylai", name="Again", driver_ref="wss://c.example.com")
    agent = Agent.get((Agent.account == acme) & (Agent.key == "akylai"))
    assert (agent.language, agent.agent_type, agent.driver, agent.active) == ("en", "outbound", "websocket", True)


def test_numbers_are_unique_across_accounts(database):
    acme, globex = make_account("acme"), make_account("globex")
    PhoneNumber.create(account=acme, e164="+14155550123", route="bot", socket_url="wss://a.example.com")
    with pytest.raises(IntegrityError), database.atomic():
        PhoneNumber.create(account=globex, e164="+14155550123", route="webhook", webhook_url="https://g")
    number = PhoneNumber.get(PhoneNumber.e164 == "+14155550123")
    assert (number.account_id, number.target, number.active) == (acme.id, "wss://a.example.com", True)


# -- call events --------------------------------------------------------------


def test_call_event_seq_is_unique_per_call(database):
    account = make_account()
    first, second = make_call(account), make_call(account)
    CallEvent.create(call=first, seq=1, kind="status", from_status="queued", to_status="ringing")
    CallEvent.create(call=second, seq=1, kind="status")
    with pytest.raises(IntegrityError), database.atomic():
        CallEvent.create(call=first, seq=1, kind="esl", detail={"event": "CHANNEL_ANSWER"})

    events = list(CallEvent.select().where(CallEvent.call == first))
    assert [(e.seq, e.kind, e.from_status, e.to_status, e.detail) for e in events] == [
        (1, "status", "queued", "ringing", {})
    ]
    assert events[0].at.tzinfo == timezone.utc


def test_deleting_a_call_deletes_its_events(database):
    account = make_account()
    doomed, kept = make_call(account), make_call(account)
    for call in (doomed, kept):
        for seq in (1, 2):
            CallEvent.create(call=call, seq=seq, kind="command", detail={"n": seq})

    # A query, not Model.delete_instance(): the database itself must cascade.
    Call.delete().where(Call.uuid == doomed.uuid).execute()

    assert {e.call_id for e in CallEvent.select()} == {kept.uuid}
    assert CallEvent.select().count() == 2


# -- database_from_url --------------------------------------------------------


def test_sqlite_url_sets_pragmas(tmp_path):
    db = database_from_url(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert isinstance(db, SqliteDatabase)
    pragmas = {
        name: db.execute_sql(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "foreign_keys", "busy_timeout")
    }
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}
    db.close()


def test_postgresql_url_builds_a_pool():
    db = database_from_url("postgres://u:secret@db.internal:6543/voicegw?max_connections=5")
    assert isinstance(db, PooledPostgresqlDatabase)
    assert db.database == "voicegw"
    assert db.connect_params == {"user": "u", "password": "secret", "host": "db.internal", "port": 6543}
    assert db._max_connections == 5


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:secret@db/voicegw", "unsupported database URL scheme 'mysql'"),
        ("sqlite://", "in-memory SQLite database cannot be shared"),
        ("sqlite:///:memory:", "in-memory SQLite database cannot be shared"),
        ("postgresql://u:secret@db", "names no database"),
    ],
)
def test_bad_database_urls(url, message):
    with pytest.raises(ValueError, match=message) as excinfo:
        database_from_url(url)
    assert "secret" not in str(excinfo.value)
