"""Admin commands write while the API writes too, on the default SQLite database.

SQLite in WAL mode lets readers and one writer go on together, but a transaction that
began as a reader and then writes cannot wait for the write lock: when another
connection has written since it began, SQLite answers "database is locked" at once,
whatever the busy timeout.  Every transaction therefore takes the write lock when it
begins (``BEGIN IMMEDIATE``) and waits its turn for up to the busy timeout.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from gateway.cli import build_parser
from gateway.models import Account, connect, database_from_url, migrate
from gateway.models.db import close_database

# Stands in for API clients: each request reads, then writes, in one transaction, then
# the client takes its ~2 ms to send the next request.
API_TRAFFIC = textwrap.dedent("""
    import os, sys, time
    from decimal import Decimal
    from gateway.models import Account, connect
    db = connect(sys.argv[1])
    stop = sys.argv[2]
    print("ready", flush=True)
    while not os.path.exists(stop):
        with db.atomic():
            account = Account.get(Account.name == "traffic")
            Account.update(balance=account.balance + Decimal("0.01")).where(Account.id == account.id).execute()
        time.sleep(0.002)
""")


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'voicegw.sqlite3'}"
    db = database_from_url(url)
    migrate(db)
    db.close()
    return url


def test_transactions_take_the_write_lock_when_they_begin(sqlite_url):
    db = database_from_url(sqlite_url)
    path = sqlite_url[len("sqlite:///"):]
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
        with db.atomic():
            db.execute_sql("SELECT 1")  # a transaction that has only read so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()
        close_database(db)


def test_cli_writes_succeed_during_api_traffic(sqlite_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    db = connect(sqlite_url)
    Account.create(name="traffic")
    Account.create(name="acme")
    db.close()
    stop = tmp_path / "stop"
    writers = [subprocess.Popen([sys.executable, "-c", API_TRAFFIC, sqlite_url, str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(8)]
    parser = build_parser()
    failed = []
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        commands = [("keys", "create", "acme"), ("wallet", "credit", "acme", "1.00"),
                    ("accounts", "set", "acme", "--rate-limit", "50")] * 7
        for argv in commands:
            args = parser.parse_args([*argv, "--json"])
            status = args.func(args)
            out, err = capsys.readouterr()
            if status != 0:
                failed.append((argv, err.strip()))
    finally:
        stop.touch()
        for writer in writers:
            writer.wait(30)
    assert [w.returncode for w in writers] == [0] * len(writers), [w.stderr.read() for w in writers]
    assert failed == []
