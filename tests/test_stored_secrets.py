"""Webhook signing secrets and provider API keys are encrypted at rest (``gateway.secret_keys``,
``EncryptedTextField``), on both databases: what the columns hold, what the models read, key
rotation, a missing or wrong key, the migration of clear rows, and signatures end to end."""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from peewee import SqliteDatabase

from gateway import models, secret_keys
from gateway.admin_cli import add_subparsers as add_admin_subparsers
from gateway.config import Settings
from gateway.models import MIGRATIONS, Account, database_from_url, migrate, migrations, stored_secrets
from gateway.models.db import close_database
from gateway.secret_keys import SecretKeyError, SecretKeys
from gateway.secrets_cli import add_subparsers as add_secrets_subparsers
from gateway.webhooks import signing
from gateway.webhooks.dispatcher import Dispatcher
from webhook_support import answered, make_call, move, receiver, ringing, verify_raw_body  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("webhook_secret", "webhook_secret_previous", "elevenlabs_api_key", "vapi_api_key")
STORED = re.compile(r"fernet:([0-9a-f]{8}):[A-Za-z0-9_-]+=*")


@contextmanager
def no_key():
    """No GATEWAY_SECRETS_KEY at all: neither configured nor in the environment (a process
    that did not configure its keys reads them from there)."""
    saved = os.environ.pop(secret_keys.KEY_VAR, None)
    try:
        with secret_keys.using(None):
            yield
    finally:
        if saved is not None:
            os.environ[secret_keys.KEY_VAR] = saved


def postgresql_only(test):
    """A test about PostgreSQL alone (SQLite without a key has its key file)."""
    return pytest.mark.postgres(pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)(test))


def keys(*texts: str) -> SecretKeys:
    return SecretKeys(list(texts), secret_keys.KEY_VAR)


def raw_row(db, account_id: int) -> dict:
    """The account's secret columns as stored, read with plain SQL."""
    cursor = db.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM accounts WHERE id = {db.param}", (account_id,))
    return dict(zip(COLUMNS, cursor.fetchone()))


def account_with_secrets(name="acme") -> tuple[Account, dict]:
    """An account with every secret set (the webhook secret rotated once, so the previous
    one is stored too); its secrets in clear."""
    account = Account.create(name=name, elevenlabs_api_key=f"xi-{name}-key", vapi_api_key=f"vapi-{name}-key")
    account.rotate_webhook_secret()
    return account, {column: getattr(account, column) for column in COLUMNS}


# -- at rest ------------------------------------------------------------------


def test_the_columns_hold_no_clear_secret_and_the_model_reads_it_back(database):
    account, clear = account_with_secrets()

    stored = raw_row(database, account.id)
    first = secret_keys.keys_for(database).first_id
    for column in COLUMNS:
        assert clear[column] not in stored[column]
        assert STORED.fullmatch(stored[column]).group(1) == first, stored[column]
    assert Account.get_by_id(account.id).webhook_secrets() == [clear["webhook_secret"],
                                                               clear["webhook_secret_previous"]]
    again = Account.get_by_id(account.id)
    assert {column: getattr(again, column) for column in COLUMNS} == clear
    # Each write encrypts afresh: the same secret is never stored twice alike.
    again.save()
    assert raw_row(database, account.id)["vapi_api_key"] != stored["vapi_api_key"]
    assert Account.get_by_id(account.id).vapi_api_key == clear["vapi_api_key"]


def test_unset_secrets_stay_null(database):
    account = Account.create(name="acme")
    stored = raw_row(database, account.id)
    assert stored["webhook_secret_previous"] is stored["elevenlabs_api_key"] is stored["vapi_api_key"] is None
    assert STORED.fullmatch(stored["webhook_secret"])


def test_a_long_secret_fits(database):
    """The webhook secret columns were VARCHAR(64); an encrypted value is longer, and so may a key be."""
    account = Account.create(name="acme", vapi_api_key="v" * 512)
    account.webhook_secret = "whsec_" + "s" * 200
    account.save()
    assert Account.get_by_id(account.id).webhook_secret == "whsec_" + "s" * 200
    assert Account.get_by_id(account.id).vapi_api_key == "v" * 512


def test_a_secret_that_is_not_a_string_is_refused(database):
    with pytest.raises(TypeError, match="a secret is a string"):
        Account.create(name="acme", vapi_api_key=12345)


# -- rotation -----------------------------------------------------------------


def test_rotation_with_two_keys(database):
    old, new = secret_keys.generate_key(), secret_keys.generate_key()
    old_id, new_id = keys(old).first_id, keys(new).first_id
    with secret_keys.using(keys(old)):
        first, first_clear = account_with_secrets("acme")
    with secret_keys.using(keys(new, old)):
        # The new key encrypts, both decrypt: the old rows read back, the new ones are on the new key.
        assert Account.get_by_id(first.id).vapi_api_key == first_clear["vapi_api_key"]
        second, second_clear = account_with_secrets("globex")
        assert stored_secrets.key_usage(database) == {old_id: 4, new_id: 4}

        assert stored_secrets.rotate(database) == (new_id, 4, 4)
        assert stored_secrets.key_usage(database) == {new_id: 8}
        assert stored_secrets.rotate(database) == (new_id, 0, 8)
    with secret_keys.using(keys(new)):  # the old key removed
        for account, clear in ((first, first_clear), (second, second_clear)):
            again = Account.get_by_id(account.id)
            assert {column: getattr(again, column) for column in COLUMNS} == clear
        assert stored_secrets.check(database).ids == (new_id,)
    with secret_keys.using(keys(old)), pytest.raises(SecretKeyError, match=f"key {new_id}, which"):
        Account.get_by_id(first.id)


def test_rotation_leaves_nothing_half_done_when_a_key_is_missing(database):
    old, other, new = (secret_keys.generate_key() for _ in range(3))
    with secret_keys.using(keys(old)):
        account, _ = account_with_secrets("acme")
    with secret_keys.using(keys(other)):
        account_with_secrets("globex")
    before = raw_row(database, account.id)
    with secret_keys.using(keys(new, old)), pytest.raises(SecretKeyError) as refused:
        stored_secrets.rotate(database)
    assert f"{keys(other).first_id} (4)" in str(refused.value)
    assert raw_row(database, account.id) == before


class Cli:
    """``voicegw secrets …`` and the admin commands, in-process, as ``gateway.cli`` runs them."""

    def __init__(self, capsys):
        self.parser = argparse.ArgumentParser(prog="voicegw")
        self.parser.add_argument("--config")
        sub = self.parser.add_subparsers(dest="command", required=True)
        add_admin_subparsers(sub)
        add_secrets_subparsers(sub)
        self.capsys = capsys

    def __call__(self, *argv):
        args = self.parser.parse_args(argv)
        status = args.func(args)
        out, err = self.capsys.readouterr()
        return status, out, err


@pytest.fixture
def cli(database, database_url, monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    return Cli(capsys)


def test_secrets_rotate_command(cli, database, monkeypatch):
    old, new = secret_keys.generate_key(), secret_keys.generate_key()
    old_id, new_id = keys(old).first_id, keys(new).first_id
    monkeypatch.setenv(secret_keys.KEY_VAR, old)
    status, out, err = cli("accounts", "create", "acme", "--json")
    assert status == 0, err
    secret = json.loads(out)["webhook_secret"]
    assert cli("accounts", "set", "acme", "--vapi-key", "vapi-secret")[0] == 0

    monkeypatch.setenv(secret_keys.KEY_VAR, f"{new}, {old}")
    status, out, err = cli("secrets", "rotate")
    assert (status, err) == (0, "")
    assert out.strip() == (f"re-encrypted 2 stored secret(s) with key {new_id} (0 already were): every stored"
                           f" secret is on key {new_id}; the other key(s) of GATEWAY_SECRETS_KEY ({old_id})"
                           " can be removed")
    status, out, _ = cli("secrets", "rotate", "--json")
    assert json.loads(out) == {"key_id": new_id, "reencrypted": 0, "unchanged": 2, "removable_key_ids": [old_id]}

    monkeypatch.setenv(secret_keys.KEY_VAR, new)
    status, out, err = cli("accounts", "show", "acme", "--json")
    assert status == 0, err
    assert json.loads(out)["webhook_secret"] == secret
    assert json.loads(out)["vapi_api_key"] != "vapi-secret"  # masked, as before
    with secret_keys.using(keys(new)):
        assert Account.get(Account.name == "acme").vapi_api_key == "vapi-secret"


def test_generate_key_command(capsys):
    parser = argparse.ArgumentParser()
    add_secrets_subparsers(parser.add_subparsers(dest="command", required=True))
    for argv in (["secrets", "generate-key"], ["secrets", "generate-key", "--json"]):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    plain, document = capsys.readouterr().out.split("\n", 1)
    generated = json.loads(document)
    assert keys(plain).ids != keys(generated["key"]).ids  # two new keys
    assert keys(generated["key"]).first_id == generated["key_id"]


# -- a missing or wrong key ---------------------------------------------------


def test_a_wrong_key_is_a_clear_error(database):
    account, _ = account_with_secrets()
    wrong = keys(secret_keys.generate_key())
    with secret_keys.using(wrong):
        with pytest.raises(SecretKeyError, match=r"accounts\.\w+ is encrypted with key [0-9a-f]{8}, which"
                                                 r" GATEWAY_SECRETS_KEY does not hold \(it holds "
                                                 f"{wrong.first_id}\\): give that key in GATEWAY_SECRETS_KEY"):
            Account.get_by_id(account.id)
        with pytest.raises(SecretKeyError, match=r"stored secrets are encrypted with key\(s\) that"
                                                 r" GATEWAY_SECRETS_KEY does not hold: [0-9a-f]{8} \(4\)"):
            stored_secrets.check(database)


def test_an_altered_value_is_a_clear_error(database):
    account = Account.create(name="acme", vapi_api_key="vapi-secret")
    stored = raw_row(database, account.id)["vapi_api_key"]
    altered = stored[:-8] + ("A" if stored[-8] != "A" else "B") + stored[-7:]
    database.execute_sql(f"UPDATE accounts SET vapi_api_key = {database.param}", (altered,))
    with pytest.raises(SecretKeyError, match=r"accounts\.vapi_api_key does not decrypt with key [0-9a-f]{8}:"
                                             " the stored value was altered"):
        Account.get_by_id(account.id)


def test_a_clear_value_is_refused_not_read(database):
    account = Account.create(name="acme")
    database.execute_sql("UPDATE accounts SET vapi_api_key = 'vapi-in-clear'")
    with pytest.raises(SecretKeyError, match=r"accounts\.vapi_api_key is not encrypted \(stored in clear\?\)"):
        Account.get_by_id(account.id)
    with pytest.raises(SecretKeyError, match=r"1 stored secret\(s\) are not encrypted: run `voicegw migrate`"):
        stored_secrets.check(database)


@postgresql_only
def test_postgresql_without_a_key_is_a_clear_error(database):
    with no_key():
        with pytest.raises(SecretKeyError, match="GATEWAY_SECRETS_KEY is not set: the secrets stored in a"
                                                 " PostgreSQL database need a key"):
            Account.create(name="acme")
        with pytest.raises(SecretKeyError, match="GATEWAY_SECRETS_KEY is not set"):
            stored_secrets.check(database)
    assert Account.select().count() == 0


def test_an_in_memory_sqlite_database_needs_a_key():
    db = SqliteDatabase(":memory:")
    with no_key(), pytest.raises(SecretKeyError, match="in-memory SQLite database has no key file"):
        secret_keys.keys_for(db)


def test_the_admin_cli_says_what_is_wrong_in_one_line(cli, monkeypatch):
    assert cli("accounts", "create", "acme")[0] == 0
    monkeypatch.setenv(secret_keys.KEY_VAR, secret_keys.generate_key())
    status, out, err = cli("accounts", "show", "acme")
    assert (status, out) == (2, "")
    assert re.fullmatch(r"voicegw: error: stored secrets are encrypted with key\(s\) that GATEWAY_SECRETS_KEY"
                        r" does not hold: [0-9a-f]{8} \(1\); it holds [0-9a-f]{8}\. Give the missing key\(s\)"
                        r" in GATEWAY_SECRETS_KEY, after the first\n", err), err


@pytest.mark.parametrize("text, message", [
    ("", "no key given"),
    (" , ", "no key given"),
    ("not-a-key", "key 1 is not a Fernet key"),
    ("{good},{good}", "key 2 is listed twice"),
    ("{good},c2hvcnQ=", "key 2 is not a Fernet key"),
    ("{good},ключ", "key 2 is not a Fernet key"),
])
def test_bad_keys_in_the_settings(text, message):
    good = secret_keys.generate_key()
    text = text.format(good=good)
    with pytest.raises(ValueError, match=f"^GATEWAY_SECRETS_KEY: {message}") as refused:
        Settings.from_env({"GATEWAY_SECRETS_KEY": text})
    assert good not in str(refused.value) and "c2hvcnQ" not in str(refused.value)


def test_keys_from_the_environment_or_a_config_file(tmp_path):
    first, second = secret_keys.generate_key(), secret_keys.generate_key()
    settings = Settings.from_env({"GATEWAY_SECRETS_KEY": f" {first} , {second} "})
    assert settings.secrets_keys.ids == (keys(first).first_id, keys(second).first_id)
    assert first not in repr(settings) and second not in repr(settings)
    path = tmp_path / "voicegw.ini"
    path.write_text(f"[gateway]\ngateway_secrets_key = {second}\n")
    assert Settings.from_env({}, config_file=path).secrets_keys.ids == (keys(second).first_id,)
    assert Settings.from_env({}).secrets_keys is None


# -- SQLite without GATEWAY_SECRETS_KEY: the key file ----------------------------------------------


def test_sqlite_without_a_key_uses_a_key_file_it_creates(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'voicegw.sqlite3'}"
    key_file = tmp_path / "voicegw.sqlite3.secrets-key"
    db = models.connect(url)
    try:
        with no_key(), caplog.at_level(logging.INFO, logger="gateway.secret_keys"):
            migrate(db)
            assert not key_file.exists()  # nothing to encrypt yet
            account = Account.create(name="acme", vapi_api_key="vapi-secret")
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            assert [r.levelno for r in caplog.records if r.name == "gateway.secret_keys"] == [logging.WARNING]
            assert str(key_file) in caplog.text and "GATEWAY_SECRETS_KEY is not set" in caplog.text
            assert Account.get_by_id(account.id).vapi_api_key == "vapi-secret"
            assert stored_secrets.check(db).source == f"key file {key_file}"
        # The file is the key: another process that reads it reads the secrets.
        from_file = SecretKeys.parse(key_file.read_text(), "key file")
        assert from_file.decrypt(raw_row(db, account.id)["vapi_api_key"], "vapi") == "vapi-secret"
    finally:
        close_database(db)


def test_a_key_file_that_is_not_a_key_is_a_clear_error(tmp_path):
    (tmp_path / "voicegw.sqlite3.secrets-key").write_text("garbage\n")
    db = database_from_url(f"sqlite:///{tmp_path / 'voicegw.sqlite3'}")
    with no_key(), pytest.raises(SecretKeyError, match=f"key file {tmp_path}/voicegw.sqlite3"
                                                                      r"\.secrets-key: key 1 is not a Fernet key"):
        secret_keys.keys_for(db)


# -- the migration ------------------------------------------------------------------------------------


def migrated_up_to_clear_secrets(db, monkeypatch) -> int:
    """Migrate ``db`` to the last version that stored secrets in clear, with two accounts
    and a call; return the encrypting step's version."""
    step = MIGRATIONS.index(migrations._encrypt_account_secrets)
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:step])
    migrate(db)
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
    p = db.param
    db.execute_sql(
        "INSERT INTO accounts (name, status, api_enabled, region, timezone, currency, created_at, webhook_secret,"
        " webhook_secret_previous, elevenlabs_api_key, vapi_api_key, rate_limit_per_minute, balance)"
        f" VALUES ({p}, 'active', {p}, 'US', 'UTC', 'USD', '2025-01-01', {p}, {p}, {p}, {p}, 120, 0)",
        ("acme", True, "whsec_acme", "whsec_acme_old", "xi-acme", "vapi-acme"))
    db.execute_sql(
        "INSERT INTO accounts (name, status, api_enabled, region, timezone, currency, created_at, webhook_secret,"
        f" rate_limit_per_minute, balance) VALUES ({p}, 'active', {p}, 'US', 'UTC', 'USD', '2025-01-01', {p}, 120, 0)",
        ("globex", True, "whsec_globex"))
    db.execute_sql(
        "INSERT INTO calls (uuid, account_id, direction, from_number, to_number, caller_id_name, status, node,"
        f" custom_args, created_at, updated_at) VALUES ('c1', 1, 'outbound', '+1', '+2', '', 'completed', 'n', '{{}}',"
        " '2025-01-01', '2025-01-01')")
    return step + 1


def test_the_migration_encrypts_the_secrets_stored_in_clear(fresh_url, monkeypatch):
    db = database_from_url(fresh_url)
    try:
        version = migrated_up_to_clear_secrets(db, monkeypatch)
        assert migrate(db) == list(range(version, len(MIGRATIONS) + 1))

        acme, globex = raw_row(db, 1), raw_row(db, 2)
        assert all(STORED.fullmatch(value) for value in acme.values())
        assert STORED.fullmatch(globex["webhook_secret"]) and globex["webhook_secret_previous"] is None
        assert not any("acme" in value for value in acme.values())
        with db.bind_ctx([Account]):
            assert {c: getattr(Account.get_by_id(1), c) for c in COLUMNS} == {
                "webhook_secret": "whsec_acme", "webhook_secret_previous": "whsec_acme_old",
                "elevenlabs_api_key": "xi-acme", "vapi_api_key": "vapi-acme"}
            assert Account.get_by_id(2).webhook_secret == "whsec_globex"
            Account.create(name="initech", webhook_secret="whsec_" + "x" * 100)  # past the old VARCHAR(64)
        assert db.execute_sql("SELECT count(*) FROM calls").fetchone() == (1,)
        assert stored_secrets.check(db) is not None
    finally:
        close_database(db)


@postgresql_only
def test_the_migration_without_a_key_changes_nothing(fresh_url, monkeypatch):
    db = database_from_url(fresh_url)
    try:
        version = migrated_up_to_clear_secrets(db, monkeypatch)
        with no_key(), pytest.raises(SecretKeyError, match="GATEWAY_SECRETS_KEY is not set"):
            migrate(db)
        assert db.execute_sql("SELECT max(version) FROM schema_version").fetchone() == (version - 1,)
        assert raw_row(db, 1)["webhook_secret"] == "whsec_acme"  # rolled back, not half done
        assert migrate(db) == list(range(version, len(MIGRATIONS) + 1))  # with the key
    finally:
        close_database(db)


# -- end to end -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback_allowed")
def test_webhook_signatures_verify_across_a_key_rotation(database, receiver):  # noqa: F811
    old, new = secret_keys.generate_key(), secret_keys.generate_key()
    with secret_keys.using(keys(old)):
        account = Account.create(name="acme")
        secret = account.webhook_secret
        call = make_call(account, surface="api", webhook_url=receiver.url("/status"))
    with secret_keys.using(keys(new, old)):
        assert stored_secrets.rotate(database).reencrypted == 1
    with secret_keys.using(keys(new)):
        move(call, ringing(), answered())
        Dispatcher(database, backoff_base=0.01, backoff_cap=0.05, request_timeout=2, lease=5).run_until_idle()
    (request,) = receiver.requests
    assert verify_raw_body(request.body, request.headers["x-signature"], secret)
    assert signing.verify_timestamped(secret, request.body, request.headers["x-webhook-signature"])
    assert secret not in raw_row(database, account.id)["webhook_secret"]


def serve(database_url: str, key: str | None, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FREESWITCH_"))}
    env.update({"GATEWAY_DATABASE_URL": database_url, "GATEWAY_HTTP": "127.0.0.1:0",
                "GATEWAY_MEDIA_LISTEN": "127.0.0.1:0", "GATEWAY_MEDIA_DIR": str(tmp_path / "media"),
                "FREESWITCH_NODES": "127.0.0.1:1:ClueCon"})
    if key is not None:
        env["GATEWAY_SECRETS_KEY"] = key
    return subprocess.run([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_serve_refuses_to_start_with_a_wrong_key(database, database_url, tmp_path):
    Account.create(name="acme")
    result = serve(database_url, secret_keys.generate_key(), tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"^voicegw: stored secrets are encrypted with key\(s\) that GATEWAY_SECRETS_KEY does not"
                     r" hold: [0-9a-f]{8} \(1\)", result.stderr, re.M), result.stderr


@postgresql_only
def test_serve_refuses_postgresql_without_a_key(database_url, tmp_path):
    result = serve(database_url, None, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"^voicegw: GATEWAY_SECRETS_KEY is not set: the secrets stored in a PostgreSQL database"
                     r" need a key", result.stderr, re.M), result.stderr


def test_a_process_that_never_configured_its_keys_takes_them_from_its_settings(tmp_path):
    """A script or worker on the models (no ``secret_keys.configure``) must use the keys
    ``serve`` uses, never a SQLite key file of its own, which would mix keys in one database."""
    url = f"sqlite:///{tmp_path / 'voicegw.sqlite3'}"
    db = database_from_url(url)
    migrate(db)
    with db.bind_ctx([Account]):
        account = Account.create(name="acme")
        secret = Account.get_by_id(account.id).webhook_secret
    db.close()
    script = ("import sys\nfrom gateway.models import Account, connect\nconnect(sys.argv[1])\n"
              "print(Account.get(Account.name == 'acme').webhook_secret)\n")
    read = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == secret
    assert not secret_keys.key_file_path(tmp_path / "voicegw.sqlite3").exists()
