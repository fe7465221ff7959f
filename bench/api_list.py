"""``GET /api/public/v1/calls`` latency with 1,000,000 call rows, on SQLite and PostgreSQL.

One account holds ``--rows`` calls (another one holds a tenth as many, so the account
filter has work to do). Rows are made inside the database (a recursive CTE on SQLite,
``generate_series`` on PostgreSQL), with the calls table's indexes dropped during the
load and built again after it, then ``ANALYZE`` (``VACUUM ANALYZE`` on PostgreSQL). Each
request goes through the whole Flask app (authentication, the shared rate-limit
counter, the envelope), in-process, one at a time; p50 and p99 are printed for:

* the first page (50 rows), a deep page (offset ``--deep-offset``) and the last page;
* the first page with a filter: ``status``, ``direction``, ``number``, a ``from``/``to``
  window;

next to two baselines measured in the same run: ``GET /account`` (the cheapest
authenticated request: what the list adds is the difference) and one primary-key
``SELECT`` of a call (the database's floor).

    python bench/api_list.py [--rows 1000000] [--backends sqlite,postgresql]
                             [--postgres-admin-url postgresql://postgres@127.0.0.1:5432/postgres]

PostgreSQL runs in a temporary database created on the server and dropped afterwards.
The first list request of the account also rolls its settled days up (once; printed
apart); the percentiles are of the requests after it.
"""

from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)

import argparse  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

import psycopg2  # noqa: E402
from playhouse.pool import PooledDatabase  # noqa: E402

from gateway import models, secret_keys  # noqa: E402
from gateway.auth.keys import create_key  # noqa: E402
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings  # noqa: E402
from gateway.models import Account, Call, migrate  # noqa: E402
from gateway.runtime import Gateway  # noqa: E402

BASE = "/api/public/v1"
START = "2025-01-01 00:00:00"  # the first call; one call per 10 s after it


def call_indexes(db):
    return [(index.name, index.columns) for index in db.get_indexes("calls") if not index.unique]


def load_sqlite(db, rows: int, account_id: int, other_id: int) -> None:
    indexes = call_indexes(db)
    for name, _ in indexes:
        db.execute_sql(f'DROP INDEX "{name}"')
    for owner, count in ((account_id, rows), (other_id, rows // 10)):
        db.execute_sql(f"""
            WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {count})
            INSERT INTO calls (uuid, account_id, direction, from_number, to_number, caller_id_name, status,
                               end_reason, node, custom_args, billsec, duration_sec, created_at, updated_at,
                               surface, campaign_id, reference_id)
            SELECT printf('%08x-%04x-4000-8000-%012x', g, {owner}, g), {owner},
                   CASE WHEN g % 10 = 0 THEN 'inbound' ELSE 'outbound' END,
                   '+917965318581', printf('+9198%08d', g % 100000), '',
                   CASE g % 5 WHEN 0 THEN 'completed' WHEN 1 THEN 'completed' WHEN 2 THEN 'missed'
                              WHEN 3 THEN 'failed' ELSE 'completed' END,
                   CASE g % 5 WHEN 2 THEN 'no_answer' WHEN 3 THEN 'busy' ELSE 'completed' END,
                   'fs1', '{{}}', g % 120, g % 130,
                   strftime('%Y-%m-%d %H:%M:%S', '{START}', '+' || (g * 10) || ' seconds'),
                   strftime('%Y-%m-%d %H:%M:%S', '{START}', '+' || (g * 10) || ' seconds'),
                   'public', g, 'ref-' || g
            FROM s""")
    for name, columns in indexes:
        db.execute_sql(f'CREATE INDEX "{name}" ON "calls" ({", ".join(columns)})')
    db.execute_sql("ANALYZE")


def load_postgres(db, rows: int, account_id: int, other_id: int) -> None:
    indexes = call_indexes(db)
    for name, _ in indexes:
        db.execute_sql(f'DROP INDEX "{name}"')
    for owner, count in ((account_id, rows), (other_id, rows // 10)):
        db.execute_sql(f"""
            INSERT INTO calls (uuid, account_id, direction, from_number, to_number, caller_id_name, status,
                               end_reason, node, custom_args, billsec, duration_sec, created_at, updated_at,
                               surface, campaign_id, reference_id)
            SELECT gen_random_uuid()::text, {owner},
                   CASE WHEN g % 10 = 0 THEN 'inbound' ELSE 'outbound' END,
                   '+917965318581', '+9198' || lpad((g % 100000)::text, 8, '0'), '',
                   (ARRAY['completed', 'completed', 'missed', 'failed', 'completed'])[g % 5 + 1],
                   (ARRAY['completed', 'completed', 'no_answer', 'busy', 'completed'])[g % 5 + 1],
                   'fs1', '{{}}', g % 120, g % 130,
                   TIMESTAMP '{START}' + g * INTERVAL '10 seconds',
                   TIMESTAMP '{START}' + g * INTERVAL '10 seconds',
                   'public', g, 'ref-' || g
            FROM generate_series(1, {count}) AS g""".replace("%", "%%"))  # psycopg2 formats %
    for name, columns in indexes:
        db.execute_sql(f'CREATE INDEX "{name}" ON "calls" ({", ".join(columns)})')


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(fn, repeat: int) -> tuple[float, float]:
    for _ in range(min(5, repeat)):
        fn()  # warm-up: caches, the connection, the query plans
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def run(label: str, url: str, rows: int, repeat: int, deep_offset: int) -> list[tuple[str, float, float]]:
    settings = Settings(database_url=url, http=HttpAddress("127.0.0.1", 0), media=MediaSettings(enabled=False),
                        freeswitch_nodes=(NodeConfig("none:1", "127.0.0.1", 1, "x"),))
    gateway = Gateway(settings)
    db = gateway.db
    migrate(db)
    account = Account.create(name="bench", region="IN", timezone="Asia/Kolkata", currency="INR",
                             balance=Decimal("1000"), rate_limit_per_minute=10_000_000)
    other = Account.create(name="other", region="IN", timezone="Asia/Kolkata", currency="INR")
    api_key, secret = create_key(account)
    headers = {"x-api-key": api_key.publishable_id, "x-api-secret": secret}
    started = time.perf_counter()
    (load_sqlite if label == "sqlite" else load_postgres)(db, rows, account.id, other.id)
    if label != "sqlite":
        db.close()
        raw = psycopg2.connect(url.split("?")[0])
        raw.autocommit = True
        with raw.cursor() as cur:
            cur.execute("VACUUM ANALYZE calls")
        raw.close()
    loaded = time.perf_counter() - started
    count = Call.select().where(Call.account == account.id).count()
    print(f"{label}: {count:,} calls of the account (+{rows // 10:,} of another) loaded and indexed"
          f" in {loaded:.1f} s", flush=True)
    client = gateway.app.test_client()

    def get(path, **query):
        def do():
            response = client.get(BASE + path, query_string=query, headers=headers)
            assert response.status_code == 200, response.json
            return response
        return do

    per_page = 50
    deep_page = deep_offset // per_page + 1
    last_page = (count - 1) // per_page + 1
    some_call = Call.select(Call.uuid).where(Call.account == account.id).limit(1).scalar()
    started = time.perf_counter()
    get("/calls", per_page=per_page)()  # the first list request rolls the settled days up, once
    first = time.perf_counter() - started
    print(f"{label}: first GET /calls (rolls {count:,} calls' days up, once): {first * 1000:.0f} ms", flush=True)
    results = [
        ("baseline: GET /account", timed(get("/account"), repeat)),
        ("baseline: SELECT call by primary key", timed(lambda: Call.get_by_id(some_call), repeat)),
        ("GET /calls first page (50)", timed(get("/calls", per_page=per_page), repeat)),
        (f"GET /calls deep page (offset {(deep_page - 1) * per_page:,})",
         timed(get("/calls", per_page=per_page, page=deep_page), max(20, repeat // 5))),
        (f"GET /calls last page (offset {(last_page - 1) * per_page:,})",
         timed(get("/calls", per_page=per_page, page=last_page), max(20, repeat // 5))),
        ("GET /calls?status=missed first page", timed(get("/calls", status="missed"), repeat)),
        ("GET /calls?direction=inbound first page", timed(get("/calls", direction="inbound"), repeat)),
        ("GET /calls?number=9812345678 (caller or recipient)", timed(get("/calls", number="9812345678"), repeat)),
        ("GET /calls?from=…&to=… (one day)",
         timed(get("/calls", **{"from": "2025-02-01", "to": "2025-02-02"}), repeat)),
    ]
    check = get("/calls", per_page=per_page, page=deep_page)().json
    assert check["pagination"]["total"] == count and len(check["data"]) == per_page
    gateway.controller.stop()
    if isinstance(db, PooledDatabase):
        db.close_all()
    else:
        db.close()
    models.database.initialize(None)
    return [(name, p50, p99) for name, (p50, p99) in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="requests per measurement (deep page: a fifth)")
    parser.add_argument("--deep-offset", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    secret_keys.configure(secret_keys.SecretKeys.throwaway("the benchmark's key"))  # it reads only what it writes
    report = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                report[backend] = run("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args.rows, args.repeat,
                                      args.deep_offset)
        elif backend == "postgresql":
            admin = psycopg2.connect(args.postgres_admin_url)
            admin.autocommit = True
            name = f"voicegw_bench_{secrets.token_hex(4)}"
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            try:
                url = f"{args.postgres_admin_url.rsplit('/', 1)[0]}/{name}"
                report[backend] = run("postgresql", url, args.rows, args.repeat, args.deep_offset)
            finally:
                with admin.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                                " AND pid <> pg_backend_pid()", (name,))
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.close()
        else:
            print(f"unknown backend {backend!r}", file=sys.stderr)
            return 2
    print()
    print(f"GET /api/public/v1/calls with {args.rows:,} calls in the account, in-process, sequential (ms)")
    for backend, rows in report.items():
        print(f"\n{backend}")
        print(f"  {'':52} {'p50':>8} {'p99':>8}")
        for name, p50, p99 in rows:
            print(f"  {name:52} {p50:8.2f} {p99:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
