"""``voicegw demo``: the whole engine on one machine, no phone line needed.

Starts the FreeSWITCH simulator and a gateway on a throw-away SQLite database, places a
few calls whose outcomes the simulator's destination rule fixes (answered, busy,
rejected, unanswered), hangs up the answered one, and prints each call's timeline.
Exits non-zero if any call ends other than expected.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gevent

from gateway.calls.states import FINAL, Status
from gateway.config import HttpAddress, NodeConfig, Settings
from gateway.models import Account, Call, CallEvent
from gateway.runtime import Gateway
from gateway.simulator import Simulator

# destination → (expected status, expected end_reason); the simulator's rule picks the
# outcome from the last three digits (see the README, "The simulator").
DEMO_CALLS = [
    ("+15550100001", "completed", "completed"),
    ("+15550100486", "failed", "busy"),
    ("+15550100603", "failed", "rejected"),
    ("+15550100480", "missed", "no_answer"),
]


def timeline(call: Call) -> str:
    rows = CallEvent.select().where(CallEvent.call == call.uuid).order_by(CallEvent.seq)
    start = call.created_at
    lines = [f"  {call.to_number}  uuid={call.uuid}"]
    for event in rows:
        offset = (event.at - start).total_seconds()
        what = f"{event.from_status} -> {event.to_status}" if event.kind == "status" else event.detail.get("command", event.kind)
        lines.append(f"    +{offset:6.3f}s  {event.kind:<8} {what:<28} {event.detail.get('reason', '')}")
    lines.append(f"    final: status={call.status} end_reason={call.end_reason} cause={call.hangup_cause} "
                 f"billsec={call.billsec} duration={call.duration_sec}")
    return "\n".join(lines)


def run(out=sys.stdout) -> int:
    with tempfile.TemporaryDirectory(prefix="voicegw-demo-") as tmp:
        simulator = Simulator(port=0, answer_delay=0.3)
        simulator.start()
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'demo.sqlite3'}",
            http=HttpAddress("127.0.0.1", 0),
            freeswitch_nodes=(NodeConfig(f"127.0.0.1:{simulator.port}", "127.0.0.1", simulator.port, "ClueCon"),),
        )
        gateway = Gateway(settings, originate_timeout=3)
        gateway.start(http=False)
        try:
            print(f"simulated FreeSWITCH on 127.0.0.1:{simulator.port}; gateway connected: "
                  f"{gateway.controller.wait_connected(10)}", file=out)
            account = Account.create(name="demo")
            controller = gateway.controller
            calls = [controller.originate(account.id, number, "+15550009999", "Voice Gateway Demo")
                     for number, _, _ in DEMO_CALLS]
            answered = calls[0]
            controller.wait_status(answered.uuid, [Status.IN_PROGRESS], timeout=10)
            gevent.sleep(1.0)  # let the answered call talk for a second
            controller.hangup(answered.uuid)
            for call in calls:
                controller.wait_status(call.uuid, FINAL, timeout=15)
            ok = True
            print("call timelines:", file=out)
            for call, (_, status, reason) in zip(calls, DEMO_CALLS):
                call = Call.get_by_id(call.uuid)
                print(timeline(call), file=out)
                if (call.status, call.end_reason) != (status, reason):
                    ok = False
                    print(f"    UNEXPECTED: wanted status={status} end_reason={reason}", file=out)
            print("demo " + ("succeeded" if ok else "FAILED"), file=out)
            return 0 if ok else 1
        finally:
            gateway.stop()
            simulator.stop()
