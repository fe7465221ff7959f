"""``POST /api/calls`` under load with bots attached, next to ``GET /healthz``.

Everything runs as it does in production, each in its own process: the FreeSWITCH
simulator (``voicegw simulator``), the example echo bot (``voicegw example-bot``) and the
gateway (``voicegw serve``, HTTP API + controller + media bridge + dispatcher).  This
process is the load: at each rate it places calls open-loop (a new call every 1/rate
seconds, whatever the answers take) to numbers that answer, talk to the bot for about a
second and hang up, while ``GET /healthz`` runs beside it ten times a second as the
baseline for the server's own latency.

Per database and rate it prints the answers (accepted 200, refused 4xx, 5xx, errors
with no answer) and p50/p99 of both requests; the point is 0 5xx at every rate: what
the gateway cannot take now it answers 503 with Retry-After (counted as refused).

    python bench/api_load.py [--rates 5,20,80] [--seconds 10] [--databases sqlite,postgresql]
"""

from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import psycopg2  # noqa: E402
import requests  # noqa: E402
from gevent.pool import Group  # noqa: E402

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FINAL_STATUSES = ("completed", "failed", "missed")
VOICEGW = [sys.executable, "-m", "gateway.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited: {process.stdout.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            gevent.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {timeout} s")


@contextmanager
def processes():
    started: list[subprocess.Popen] = []

    def start(args, env=None):
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(process)
        return process
    try:
        yield start
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def database(kind: str, workdir: Path):
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'load.sqlite3'}"
        return
    name = f"voicegw_load_{secrets.token_hex(4)}"
    admin = psycopg2.connect(POSTGRES_ADMIN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def cli(env: dict, *args: str) -> dict:
    done = subprocess.run([*VOICEGW, *args, "--json"], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"voicegw {' '.join(args)}: {done.stderr}")
    return json.loads(done.stdout)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_rate(base: str, key: str, rate: float, seconds: float) -> dict:
    """Open-loop load at ``rate`` calls/s for ``seconds``, healthz at 10/s beside it."""
    counts = {"accepted": 0, "refused": 0, "5xx": 0, "errors": 0}
    reasons: dict[str, int] = {}
    post_ms: list[float] = []
    health_ms: list[float] = []
    api = requests.Session()
    health = requests.Session()
    group = Group()

    def place(index: int) -> None:
        started = time.perf_counter()
        try:
            answer = api.post(f"{base}/api/calls", headers={"X-API-KEY": key}, timeout=30,
                              json={"destination_number": f"+1212555{index % 10}200"})
        except requests.RequestException:
            counts["errors"] += 1
            return
        post_ms.append((time.perf_counter() - started) * 1000)
        status = answer.status_code
        counts["accepted" if status == 200 else "5xx" if status >= 500 and status != 503 else "refused"] += 1
        if status != 200:
            reason = f"{status} {answer.text.strip()[:120]}"
            reasons[reason] = reasons.get(reason, 0) + 1

    def probe() -> None:
        started = time.perf_counter()
        try:
            health.get(f"{base}/healthz", timeout=30)
            health_ms.append((time.perf_counter() - started) * 1000)
        except requests.RequestException:
            pass

    start = time.perf_counter()
    index, probes = 0, 0
    while True:
        now = time.perf_counter() - start
        if now >= seconds:
            break
        while index < now * rate:
            group.spawn(place, index)
            index += 1
        while probes < now * 10:
            group.spawn(probe)
            probes += 1
        gevent.sleep(min(1 / rate, 0.1) / 2)
    group.join(timeout=60)
    return {"rate": rate, **counts, "reasons": reasons, "post_p50": percentile(post_ms, 50), "post_p99": percentile(post_ms, 99),
            "health_p50": percentile(health_ms, 50), "health_p99": percentile(health_ms, 99)}


def bench(kind: str, rates: list[float], seconds: float) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url, processes() as start:
        sim_port, bot_port, http_port, media_port = (free_port() for _ in range(4))
        sim = start([*VOICEGW, "simulator", "--listen", f"127.0.0.1:{sim_port}", "--answer-delay", "50"])
        bot = start([*VOICEGW, "example-bot", "--listen", f"127.0.0.1:{bot_port}"])
        wait_listening(sim_port, sim, "the simulator")
        wait_listening(bot_port, bot, "the example bot")
        env = {**os.environ, "GATEWAY_DATABASE_URL": url, "GATEWAY_HTTP": f"127.0.0.1:{http_port}",
               "FREESWITCH_NODES": f"127.0.0.1:{sim_port}:ClueCon", "GATEWAY_MEDIA_LISTEN": f"127.0.0.1:{media_port}",
               "GATEWAY_MEDIA_PLAYBACK": "stream", "GATEWAY_OUTBOUND_ALLOWLIST": "127.0.0.1/32",
               "GATEWAY_CONFIG": ""}
        subprocess.run([*VOICEGW, "migrate"], env=env, check=True, capture_output=True, timeout=120)
        account = cli(env, "accounts", "create", "load", "--region", "US")
        cli(env, "accounts", "set", str(account["id"]), "--caller-id", "+12125550100",
            "--socket-url", f"ws://127.0.0.1:{bot_port}/", "--rate-limit", "100000")
        cli(env, "wallet", "credit", str(account["id"]), "1000000")
        key = cli(env, "keys", "create", str(account["id"]))["secret_key"]
        serve = start([*VOICEGW, "serve"], env=env)
        wait_listening(http_port, serve, "voicegw serve")
        base = f"http://127.0.0.1:{http_port}"
        results = []
        for rate in rates:
            results.append(run_rate(base, key, rate, seconds))
            gevent.sleep(3)  # let the last calls of this rate end before the next
        return results, call_outcomes(url, seconds=180)  # calls past 26/s wait their turn (admission)


def call_outcomes(url: str, seconds: float) -> dict:
    """Once the calls have had ``seconds`` to end: how many ended, and how many got their bot."""
    from gateway.models import Call, CallEvent, connect

    db = connect(url)
    deadline = time.monotonic() + seconds
    while Call.select().where(Call.status.not_in(FINAL_STATUSES)).count() and time.monotonic() < deadline:
        gevent.sleep(0.5)
    statuses: dict[str, int] = {}
    for call in Call.select(Call.status):
        statuses[call.status] = statuses.get(call.status, 0) + 1
    with_bot = {e.call_id for e in CallEvent.select(CallEvent.call, CallEvent.detail).where(CallEvent.kind == "media")
                if (e.detail or {}).get("event") == "bot_connected"}
    db.close()
    return {"statuses": statuses, "with_bot": len(with_bot)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5,20,80")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(f"{'database':<11}{'calls/s':>8}{'accepted':>9}{'refused':>8}{'5xx':>5}{'errors':>7}"
          f"{'POST p50':>10}{'POST p99':>10}{'healthz p50':>12}{'healthz p99':>12}   (ms)")
    worst = 0
    for kind in args.databases.split(","):
        try:
            results, outcomes = bench(kind, rates, args.seconds)
        except psycopg2.OperationalError as exc:
            print(f"{kind:<11} skipped: {' '.join(str(exc).split())}")
            continue
        for r in results:
            worst = max(worst, r["5xx"])
            print(f"{kind:<11}{r['rate']:>8.0f}{r['accepted']:>9}{r['refused']:>8}{r['5xx']:>5}{r['errors']:>7}"
                  f"{r['post_p50']:>10.1f}{r['post_p99']:>10.1f}{r['health_p50']:>12.1f}{r['health_p99']:>12.1f}")
            for reason, count in sorted(r["reasons"].items(), key=lambda item: -item[1])[:3]:
                print(f"{'':<11}{count:>8} x {reason}")
        print(f"{'':<11}calls by final status: {outcomes['statuses']}; calls that reached their bot:"
              f" {outcomes['with_bot']}")
    print(f"5xx answers at any rate: {worst}")


if __name__ == "__main__":
    main()
