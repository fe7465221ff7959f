"""Database fixtures, run once per backend.

``database_url``  the URL of a migrated, empty database.
``database``      that database, with ``gateway.models.database`` bound to it.

Both are parametrized over ``sqlite`` (a file in the test's tmp_path) and
``postgresql``: one database per test session, created on the server at
127.0.0.1:5432, emptied before each test and dropped at the end. The
``postgresql`` cases carry the ``postgres`` marker (``-m "not postgres"``
deselects them) and are skipped when the server is unreachable, except with
``CI=true``, where they fail instead.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg2
import pytest
from peewee import sort_models
from psycopg2 import sql

from gateway import models, net_policy, secret_keys
from gateway.models import ALL_MODELS, connect, database_from_url, migrate
from gateway.models.db import close_database, held_connections
from gateway.simulator import Simulator

SHIPPED_DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"

# Superusers that trust authentication lets in, depending on how the server was set up.
POSTGRES_ADMIN_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


class _PostgresTestDatabase:
    """A throwaway PostgreSQL database, migrated once and emptied on demand."""

    def __init__(self):
        self.admin, admin_url = _connect_admin()
        self.name = f"voicegw_test_{secrets.token_hex(6)}"
        self.url = f"{admin_url.rsplit('/', 1)[0]}/{self.name}"
        self.conn = None
        self._emptying = None
        with self.admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def migrate(self):
        db = database_from_url(self.url)
        migrate(db)
        close_database(db)
        self.conn = psycopg2.connect(self.url)
        self.conn.autocommit = True

    def empty(self):
        """Delete every row, children first, and restart the id sequences: one round trip
        of about 20 ms, where ``TRUNCATE … RESTART IDENTITY CASCADE`` of the same tables
        takes about 400 ms (it replaces each table's files) and ran before every test."""
        if self._emptying is None:
            with self.conn.cursor() as cur:
                cur.execute("SELECT sequence_schema, sequence_name FROM information_schema.sequences")
                sequences = cur.fetchall()
            self._emptying = sql.SQL("; ").join(
                [sql.SQL("DELETE FROM {}").format(sql.Identifier(model._meta.table_name))
                 for model in reversed(sort_models(ALL_MODELS))]
                + [sql.SQL("ALTER SEQUENCE {}.{} RESTART").format(sql.Identifier(schema), sql.Identifier(name))
                   for schema, name in sequences])
        with self.conn.cursor() as cur:
            cur.execute(self._emptying)

    def drop(self):
        if self.conn is not None:
            self.conn.close()
        with self.admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name)))
        self.admin.close()


def _connect_admin():
    errors = []
    for url in POSTGRES_ADMIN_URLS:
        try:
            conn = psycopg2.connect(url, connect_timeout=3)
        except psycopg2.OperationalError as exc:
            errors.append(f"{url}: {' '.join(str(exc).split())}")
            continue
        conn.autocommit = True  # CREATE/DROP DATABASE refuse to run in a transaction
        return conn, url
    reason = "PostgreSQL unreachable: " + "; ".join(errors)
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _postgres_test_database():
    test_db = _PostgresTestDatabase()
    try:
        test_db.migrate()
        yield test_db
    finally:
        test_db.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return _migrated_sqlite(tmp_path)
    test_db = request.getfixturevalue("_postgres_test_database")
    test_db.empty()
    return test_db.url


@pytest.fixture
def fresh_url(database_url, tmp_path):
    """The URL of an empty, unmigrated database (PostgreSQL: an empty schema of the test
    database, dropped afterwards), for tests of the migrations themselves."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    schema = f"fresh_{secrets.token_hex(4)}"
    setup = database_from_url(database_url)
    setup.execute_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{database_url}?options=-csearch_path%3D{schema}"
    finally:
        setup.execute_sql(f"DROP SCHEMA {schema} CASCADE")
        setup.close_all()


@pytest.fixture
def database(database_url):
    yield from _bound_database(database_url)


@pytest.fixture
def sqlite_database(tmp_path):
    """The database on SQLite only, for tests whose subject is not the database (what a
    caller hears of a bot): the rows they write are the same on both."""
    yield from _bound_database(_migrated_sqlite(tmp_path))


@pytest.fixture
def sqlite_database_url(tmp_path):
    """The URL of a migrated SQLite database: what a module whose subject is not the
    database (an OpenAPI document, a schemathesis run) returns as its ``database_url``."""
    return _migrated_sqlite(tmp_path)


def _migrated_sqlite(tmp_path) -> str:
    """The URL of a new SQLite database in ``tmp_path``, migrated."""
    url = f"sqlite:///{tmp_path / 'voicegw.sqlite3'}"
    db = database_from_url(url)
    migrate(db)
    db.close()
    return url


def _bound_database(url: str):
    db = connect(url)
    yield db
    db.close()  # the test's own greenlet's connection
    held = held_connections(db, grace=10.0)
    if held:
        # Closing a connection under the greenlet that holds it blocks the whole process
        # on the connection's lock (nothing can interrupt that): leave it, fail the test.
        db.close_idle()
        models.database.initialize(None)
        pytest.fail(f"{held} pooled connection(s) still held by greenlets the test did not stop")
    close_database(db)
    # Unbind, so that a later test without this fixture fails instead of
    # quietly reopening this test's database.
    models.database.initialize(None)


#: The key the tests' stored secrets are encrypted with: one for the session, since the
#: PostgreSQL test database outlives a test.
TEST_SECRETS_KEY = secret_keys.generate_key()


@pytest.fixture(autouse=True)
def _secrets_key():
    """Every test runs with GATEWAY_SECRETS_KEY set, as a production install does: in the
    process (for the gateways and databases tests build) and in the environment (for
    commands run in-process and subprocesses).  Not with ``monkeypatch``: requested by an
    autouse fixture, it would be torn down after the test's other fixtures, and its undo
    would overwrite what they restored (``loopback_allowed``'s allowlist)."""
    saved = os.environ.get(secret_keys.KEY_VAR)
    os.environ[secret_keys.KEY_VAR] = TEST_SECRETS_KEY
    try:
        with secret_keys.using(secret_keys.SecretKeys.parse(TEST_SECRETS_KEY, secret_keys.KEY_VAR)):
            yield
    finally:
        if saved is None:
            os.environ.pop(secret_keys.KEY_VAR, None)
        else:
            os.environ[secret_keys.KEY_VAR] = saved


@pytest.fixture
def loopback_allowed():
    """The operator allowlist of the tests: 127.0.0.1, where their webhook receivers and
    bots listen (customer URLs on internal addresses are refused otherwise)."""
    with net_policy.policy.allowing("127.0.0.1"):
        yield net_policy.policy


@pytest.fixture
def sim():
    """A simulated FreeSWITCH on a free port (answers after 50 ms); a test module with other
    needs (a dialplan, outcomes, limits) defines its own."""
    simulator = Simulator(port=0, answer_delay=0.05)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def dialplan_sim():
    """A simulated FreeSWITCH running the shipped dialplan/ (with freeswitch-conf/vars.xml)
    on a free port (answers after 50 ms)."""
    simulator = Simulator(port=0, answer_delay=0.05, dialplan_dir=str(SHIPPED_DIALPLAN))
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def bot():
    """A bot speaking Twilio Media Streams on 127.0.0.1 (``media_support.TwilioBot``)."""
    from media_support import TwilioBot

    server = TwilioBot()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _unbind_models():
    """After every test the models are bound to no database.  A test that built a Gateway
    (which binds them to its own) and left them bound would make a later test's queries
    on an explicit database consult a stale one: peewee asks the models' database whether
    to use RETURNING, so an insert into SQLite came back as a PostgreSQL-shaped cursor."""
    yield
    models.database.initialize(None)


def pytest_collection_modifyitems(config, items):
    """``freeswitch`` tests need a real FreeSWITCH (the Vagrant VM): FREESWITCH_REAL=1."""
    if os.environ.get("FREESWITCH_REAL") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real FreeSWITCH: run on the Vagrant VM with FREESWITCH_REAL=1")
    for item in items:
        if "freeswitch" in item.keywords:
            item.add_marker(skip)
