"""Calls placed per second through the campaign dialer, next to the raw placement path, in
one run against the simulator at its shipped 30 sessions per second.

One gateway process (in this process, SQLite in a temporary directory) and the simulator.
First ``--calls`` calls are placed straight through ``gateway.calls.placement.place`` as
fast as it returns; then a campaign of as many contacts (calls per second 30, concurrency
``--calls``) is approved and dialled. For each it prints how long until every originate
reached the simulator and the rate that gives, the node's admission budget (26 a second:
a tenth under the switch's 30, less one) being the ceiling of both; and for the campaign
that no number was dialled twice and none left undialled.

    python bench/campaign_dialer.py [--calls 200]
"""

from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

from gateway import secret_keys  # noqa: E402
from gateway.auth.keys import create_key  # noqa: E402
from gateway.calls.placement import place  # noqa: E402
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings  # noqa: E402
from gateway.dialer import approvals, campaigns, contacts  # noqa: E402
from gateway.models import Account, Agent, database  # noqa: E402
from gateway.runtime import Gateway  # noqa: E402
from gateway.simulator import Simulator  # noqa: E402
from gateway.simulator.outcomes import Outcome  # noqa: E402


def dialled(sim, prefix: str) -> Counter:
    return Counter(number for number in (ch.initial_profile.destination_number for ch in sim.history.values()
                                         if ch.direction == "outbound") if number.startswith(prefix))


def wait_for(sim, prefix: str, count: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while sum(dialled(sim, prefix).values()) < count and time.monotonic() < deadline:
        gevent.sleep(0.02)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    n = args.calls
    sim = Simulator(port=0, answer_delay=0.05).start()
    raw = [f"+1212{4000000 + i:07d}" for i in range(n)]
    dialer_numbers = [f"+1212{5000000 + i:07d}" for i in range(n)]
    for number in raw + dialer_numbers:
        sim.set_outcome(number, Outcome(final=200, hangup_after=0.2))
    with tempfile.TemporaryDirectory() as tmp, \
            secret_keys.using(secret_keys.SecretKeys.parse(secret_keys.generate_key(), "bench")):
        node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", http=HttpAddress("127.0.0.1", 0),
                            freeswitch_nodes=(node,), media=MediaSettings(enabled=False),
                            admission_wait=600)
        gateway = Gateway(settings, originate_timeout=5, dialer_options={"interval": 0.05})
        gateway.start(http=False)
        try:
            assert gateway.controller.wait_connected(5)
            account = Account.create(name="bench", region="US", default_caller_id="+12125550100",
                                     balance=Decimal("1000"))
            agent = Agent.create(account=account, key="bench", name="Bench", driver="websocket",
                                 driver_ref="wss://agents.example.com/bench")

            began = time.monotonic()
            for number in raw:
                place(gateway.controller, account, number, account.default_caller_id, surface="voice")
            raw_seconds = wait_for(sim, "+12124", n, 120) - began

            clean = campaigns.clean_settings(account, agent, name="bench", from_number=None, window=None,
                                             timezone=None, calls_per_second=30, max_concurrent=min(n, 1000))
            campaign = campaigns.create(account, clean, None)
            with database.atomic():
                contacts.load(account, campaign, [{"phone": p} for p in dialer_numbers])
            api_key, _ = create_key(account, ["voice:campaign:execute"])
            began = time.monotonic()
            approvals.approve(approvals.request(campaign, "start", api_key).id, "bench")
            dialer_seconds = wait_for(sim, "+12125", n, 120) - began
            counts = dialled(sim, "+12125")
        finally:
            gateway.stop()
            sim.stop()
    print(f"{n} calls, simulator at 30 sessions/s (admission budget 26/s)")
    print(f"raw placement:   {raw_seconds:6.2f} s  {n / raw_seconds:6.1f} calls/s")
    print(f"campaign dialer: {dialer_seconds:6.2f} s  {n / dialer_seconds:6.1f} calls/s  "
          f"dialled twice: {sum(1 for c in counts.values() if c > 1)}  "
          f"not dialled: {sum(1 for p in dialer_numbers if counts[p] == 0)}")


if __name__ == "__main__":
    main()
