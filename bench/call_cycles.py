"""Originate → answer → hangup cycles per second, end to end, against the simulator.

Each cycle is a real call through the whole engine: a Call row is written, the call waits
its turn in the node's line (admission control), ``bgapi originate`` goes over TCP to the
simulator, CHANNEL_* events come back, the controller moves the row to ``in_progress``,
sends ``uuid_kill`` and records ``completed`` with its event log.  ``--concurrency``
cycles run at once.  The simulator runs in its own process (``voicegw simulator``), as
FreeSWITCH would, so the figure is the gateway's.

It runs twice: against a switch with the shipped ``sessions-per-second=30`` (the
gateway paces to it: every call must complete, none refused), and against one with no
practical limit (what the engine itself can do).  The baseline printed beside them is
the same number of bare ``api status`` round trips on one connection in the same run,
so the ratio says how many ESL round trips a cycle costs.

    python bench/call_cycles.py [--calls 1000] [--concurrency 50] [--database-url URL]
"""

from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)

import argparse  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from gevent.pool import Pool  # noqa: E402

from gateway import secret_keys  # noqa: E402
from gateway.calls.controller import CallController  # noqa: E402
from gateway.domain import FINAL, Status  # noqa: E402
from gateway.config import NodeConfig  # noqa: E402
from gateway.esl import commands  # noqa: E402
from gateway.esl.connection import ESLLink  # noqa: E402
from gateway.models import Account, Call, CallEvent, connect, migrate  # noqa: E402

SHIPPED_SPS = 30
UNTHROTTLED_SPS = 1_000_000
WARM_UP = 50


def cycle(controller: CallController, account_id: int, index: int) -> None:
    call = controller.originate(account_id, f"+1555030{index % 10000:04d}1", "+15550009999")
    if controller.wait_status(call.uuid, [Status.IN_PROGRESS], 120) is not Status.IN_PROGRESS:
        return  # ended without an answer: counted below
    controller.hangup(call.uuid)
    controller.wait_status(call.uuid, FINAL, 30)


def bench_cycles(controller, account_id, calls, concurrency) -> float:
    pool = Pool(concurrency)
    start = time.perf_counter()
    for i in range(calls):
        pool.spawn(cycle, controller, account_id, i)
    pool.join(raise_error=True)
    return calls / (time.perf_counter() - start)


def bench_status_round_trips(port: int, count: int) -> float:
    link = ESLLink("127.0.0.1", port, "ClueCon", on_event=lambda event: None)
    link.connect()
    start = time.perf_counter()
    for _ in range(count):
        link.api(commands.STATUS)
    rate = count / (time.perf_counter() - start)
    link.close()
    return rate


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def against_switch(sps: int, args) -> dict:
    """Cycles/s and outcomes against a simulator with ``sps`` sessions per second."""
    port = free_port()
    simulator = subprocess.Popen([sys.executable, "-m", "gateway.cli", "simulator", "--listen", f"127.0.0.1:{port}",
                                  "--answer-delay", "0", "--sps", str(sps)])
    controller = CallController([NodeConfig("sim", "127.0.0.1", port, "ClueCon")])
    controller.start()
    try:
        if not controller.wait_connected(15):
            raise SystemExit("the simulator did not come up")
        warm_up = Account.create(name=f"bench-warm-up-{sps}-{time.time()}")
        bench_cycles(controller, warm_up.id, min(WARM_UP, args.calls), args.concurrency)
        baseline = bench_status_round_trips(port, args.calls)
        account = Account.create(name=f"bench-{sps}-{time.time()}")
        rate = bench_cycles(controller, account.id, args.calls, args.concurrency)
        rows = Call.select().where(Call.account == account.id)
        refused = sum("note" in entry.detail for entry in CallEvent.select().join(Call).where(
            Call.account == account.id, CallEvent.kind == "admission"))
        return {"rate": rate, "baseline": baseline, "completed": rows.where(Call.status == "completed").count(),
                "failed": rows.where(Call.status == "failed").count(), "refusals": refused,
                "limits": str(controller.nodes["sim"].limits)}
    finally:
        controller.stop()
        simulator.terminate()
        simulator.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    secret_keys.configure(secret_keys.SecretKeys.throwaway("the benchmark's key"))  # it reads only what it writes
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate(connect(url))
        shipped = against_switch(SHIPPED_SPS, args)
        unthrottled = against_switch(UNTHROTTLED_SPS, args)
    print(f"database: {url.split('://')[0]}  calls: {args.calls}  concurrency: {args.concurrency}")
    print(f"baseline  api status round trips/s:    {shipped['baseline']:10,.0f}")
    for label, run in ((f"switch at {SHIPPED_SPS} sessions/s", shipped), ("switch unthrottled", unthrottled)):
        print(f"cycles/s, {label + ':':26} {run['rate']:10,.1f}   {run['completed']}/{args.calls} completed, "
              f"{run['failed']} failed, {run['refusals']} refusals retried (node: {run['limits']})")
    print(f"round trips per unthrottled cycle: {unthrottled['baseline'] / unthrottled['rate']:.1f}")


if __name__ == "__main__":
    main()
