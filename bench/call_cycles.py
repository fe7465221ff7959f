"""Originate → answer → hangup cycles per second, end to end, against the simulator.

Each cycle is a real call through the whole engine: a Call row is written, ``bgapi
originate`` goes over TCP to the simulator, CHANNEL_* events come back, the controller
moves the row to ``in_progress``, sends ``uuid_kill`` and records ``completed`` with its
event log.  ``--concurrency`` cycles run at once.  The simulator runs in its own
process (``voicegw simulator``), as FreeSWITCH would, so the figure is the gateway's.  The baseline printed beside it is the
same number of bare ``api status`` round trips on one connection in the same run, so
the ratio says how many ESL round trips a cycle costs.

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

from gateway.calls.controller import CallController  # noqa: E402
from gateway.calls.states import FINAL, Status  # noqa: E402
from gateway.config import NodeConfig  # noqa: E402
from gateway.esl.connection import ESLLink  # noqa: E402
from gateway.models import Account, Call, connect, migrate  # noqa: E402


def cycle(controller: CallController, account_id: int, index: int) -> None:
    call = controller.originate(account_id, f"+1555030{index % 10000:04d}1", "+15550009999")
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 30)
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
        link.api("status")
    rate = count / (time.perf_counter() - start)
    link.close()
    return rate


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate(connect(url))
        port = free_port()
        simulator = subprocess.Popen([sys.executable, "-m", "gateway.cli", "simulator",
                                      "--listen", f"127.0.0.1:{port}", "--answer-delay", "0"])
        controller = CallController([NodeConfig("sim", "127.0.0.1", port, "ClueCon")])
        controller.start()
        if not controller.wait_connected(15):
            simulator.kill()
            raise SystemExit("the simulator did not come up")
        account = Account.create(name=f"bench-{time.time()}")
        bench_cycles(controller, account.id, min(50, args.calls), args.concurrency)  # warm up
        baseline = bench_status_round_trips(port, args.calls)
        rate = bench_cycles(controller, account.id, args.calls, args.concurrency)
        completed = Call.select().where(Call.account == account.id, Call.status == "completed").count()
        controller.stop()
        simulator.terminate()
        simulator.wait(10)
    print(f"database: {url.split('://')[0]}  calls: {args.calls}  concurrency: {args.concurrency}")
    print(f"baseline  api status round trips/s: {baseline:10,.0f}")
    print(f"originate→answer→hangup cycles/s:    {rate:10,.0f}   ({baseline / rate:.1f} round trips per cycle)")
    print(f"calls completed: {completed - min(50, args.calls)}/{args.calls}")


if __name__ == "__main__":
    main()
