"""The database handle shared by all models, and how it is built from a URL.

Models bind to the ``database`` proxy at import time; ``connect(url)`` points it
at a real database. In a gevent process, monkey-patch before importing peewee:
peewee keeps one connection per thread, and only a patched ``threading.local``
makes that one connection per greenlet.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from urllib.parse import urlparse

import gevent

from peewee import Database, DatabaseProxy, Model, SqliteDatabase
from playhouse import db_url
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase
from psycogreen.gevent import patch_psycopg

logger = logging.getLogger(__name__)

database = DatabaseProxy()

SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}
# A transaction that begins as a reader cannot wait for the write lock: once another
# connection (the API, a CLI command) has written, its first write fails at once with
# "database is locked", whatever busy_timeout says.  Taking the lock at BEGIN makes it
# wait its turn (up to busy_timeout); WAL readers outside transactions are not held up.
SQLITE_LOCK_TYPE = "IMMEDIATE"

# Per process. Query parameters in the URL override these,
# e.g. postgresql://voicegw@db/voicegw?max_connections=50
POSTGRES_POOL_DEFAULTS = {
    "max_connections": 20,
    "stale_timeout": 300,  # seconds before an idle connection is recycled
    "timeout": 10,  # seconds to wait for a free connection before failing
}


class BaseModel(Model):
    class Meta:
        database = database


def database_from_url(url: str) -> Database:
    """Build (without connecting) the database ``url`` names.

    ``sqlite:///relative/path``, ``sqlite:////absolute/path`` and
    ``postgresql://user:password@host:port/name`` (or ``postgres://``) are accepted.
    """
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        params = db_url.parse(url)
        if params["database"] == ":memory:":
            # Each greenlet's connection would see its own, empty, database.
            raise ValueError(f"{url!r}: an in-memory SQLite database cannot be shared; name a file")
        return SqliteDatabase(pragmas=SQLITE_PRAGMAS, lock_type=SQLITE_LOCK_TYPE, **params)
    if scheme in ("postgresql", "postgres"):
        # Makes psycopg2 wait through gevent's hub, so a query blocks only its greenlet.
        patch_psycopg()
        params = db_url.parse(url)
        if not params["database"]:
            raise ValueError(
                "the PostgreSQL URL names no database; expected postgresql://user@host/name"
            )
        return PooledPostgresqlDatabase(**{**POSTGRES_POOL_DEFAULTS, **params})
    # The URL is not echoed: it may carry a password.
    raise ValueError(
        f"unsupported database URL scheme {scheme!r};"
        " use sqlite:///path or postgresql://user@host/name"
    )


def connect(url: str) -> Database:
    """Build the database ``url`` names and bind the models' ``database`` proxy to it.

    The connection itself opens lazily, on first use.
    """
    db = database_from_url(url)
    database.initialize(db)
    return db


@contextmanager
def connection_scope(db: Database | DatabaseProxy = database):
    """A connection for this greenlet while the block runs: the one it already has (an
    API request's, say), else one opened here and closed -- given back to the pool --
    on the way out.  peewee connects lazily, one connection per greenlet, and a pooled
    connection left open by a finished greenlet never returns to the pool."""
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        yield
    finally:
        if opened and not db.is_closed():
            db.close()


def release_connection(db: Database | DatabaseProxy = database) -> None:
    """Give back the connection this greenlet holds, if it holds one: the last step of a
    greenlet that may have queried outside a ``connection_scope``."""
    bound = db.obj if isinstance(db, DatabaseProxy) else db
    if bound is not None and not bound.is_closed():
        bound.close()


def held_connections(db: Database, grace: float = 0.0) -> int:
    """How many of a pool's connections greenlets still hold once ``grace`` seconds are
    over (0 at once for a database without a pool)."""
    if not isinstance(db, PooledDatabase):
        return 0
    deadline = time.monotonic() + grace
    while db._in_use and time.monotonic() < deadline:
        gevent.sleep(0.01)
    return len(db._in_use)


def close_database(db: Database, grace: float = 1.0) -> None:
    """Close ``db`` for good, including every connection a pool keeps (call it once
    nothing uses the database any more).

    A pooled connection another greenlet still holds gets ``grace`` seconds to come back.
    Then it is closed too, unless a query is running on it: closing a psycopg2 connection
    that a suspended greenlet is executing on blocks the whole process on the
    connection's lock, and nothing can interrupt that.  Such a one is logged and left to
    the process's end (a leak, where the alternative is a hang)."""
    if not isinstance(db, PooledDatabase):
        db.close()
        return
    if not db.is_closed():
        db.close()  # this greenlet's own
    held_connections(db, grace)
    running = 0
    for key, pooled in list(db._in_use.items()):
        if _executing(pooled.connection):
            running += 1
            continue
        del db._in_use[key]
        db._close_raw(pooled.connection)
    db.close_idle()
    if running:
        logger.error("database: %d pooled connection(s) still running a query for a greenlet at shutdown; "
                     "left open", running)


def _executing(connection) -> bool:
    is_executing = getattr(connection, "isexecuting", None)
    try:
        return bool(is_executing()) if is_executing is not None else False
    except Exception:  # a connection already closed
        return False