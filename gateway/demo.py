"""``voicegw demo``: the whole gateway on one machine, no phone line needed.

Starts the FreeSWITCH simulator, the example bot and a gateway (HTTP API, call
controller, media bridge) on a throw-away SQLite database, creates an account and an API
key, and places calls through ``POST /api/calls``:

* one that answers: the bot gets ``connected``/``start``, greets the caller with a tone
  and a ``mark`` (echoed once the greeting has played), then echoes the caller's audio;
  the demo hangs it up with ``POST /api/calls/hangup`` and reads it back with ``GET``;
* three the far end refuses or never answers (busy, declined, no answer), by the
  simulator's destination rule (README, "The simulator").

It prints each call's timeline from its event log and exits non-zero if any call ends
other than expected.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import gevent
import requests

from gateway import net_policy, secret_keys
from gateway.auth.keys import create_key
from gateway.domain import FINAL, Status
from gateway.calls.timeline import timeline
from gateway.config import HttpAddress, NodeConfig, Settings
from gateway.example_bot import GREETING, EchoBot
from gateway.models import Account, Call
from gateway.runtime import Gateway
from gateway.simulator import Simulator

CALLER_ID = "+14155550100"
# destination → (expected status, expected end_reason)
ANSWERED = ("+14152400001", "completed", "completed")
REFUSED = [
    ("+14152400486", "failed", "busy"),
    ("+14152400603", "failed", "rejected"),
    ("+14152400480", "missed", "no_answer"),
]


def run(out=sys.stdout) -> int:
    say = lambda text="": print(text, file=out)  # noqa: E731
    # Everything runs on 127.0.0.1, which customer URLs (the bot's) may not reach unless
    # the operator allows it: the demo is the operator, and allows it for its run. Its
    # database is thrown away, and so is the key its secrets are encrypted with.
    with tempfile.TemporaryDirectory(prefix="voicegw-demo-") as tmp, net_policy.policy.allowing("127.0.0.1"), \
            secret_keys.using(secret_keys.SecretKeys.throwaway("the demo's key")):
        simulator = Simulator(port=0, answer_delay=0.3)
        simulator.start()
        bot = EchoBot()
        bot.start()
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'demo.sqlite3'}",
            http=HttpAddress("127.0.0.1", 0),
            freeswitch_nodes=(NodeConfig(f"127.0.0.1:{simulator.port}", "127.0.0.1", simulator.port, "ClueCon"),),
        )
        gateway = Gateway(settings, originate_timeout=3)
        gateway.start()
        try:
            api = f"http://127.0.0.1:{gateway.http.server_port}/api"
            connected = gateway.controller.wait_connected(10)
            say(f"simulated FreeSWITCH on 127.0.0.1:{simulator.port} (connected: {connected}), "
                f"example bot at {bot.url}, API at {api}")
            account = Account.create(name="demo", default_caller_id=CALLER_ID)
            _, secret = create_key(account)
            session = requests.Session()
            session.headers["X-API-KEY"] = secret

            def place(number: str, **fields) -> str:
                reply = session.post(f"{api}/calls", json={"destination_number": number, **fields}, timeout=10)
                say(f"POST /api/calls {number} -> {reply.status_code} {reply.text.strip()}")
                if reply.status_code != 200:
                    raise SystemExit(f"demo FAILED: the API refused the call ({reply.status_code})")
                return reply.json()["call_uuid"]

            answered = place(ANSWERED[0], caller_id_name="Voice Gateway Demo", socket_url=bot.url)
            refused = [place(number, socket_url=bot.url) for number, _, _ in REFUSED]
            controller = gateway.controller
            controller.wait_status(answered, [Status.IN_PROGRESS], timeout=10)
            greeted = bot.greeted.wait(10)
            say(f"bot greeted the caller and got its mark back: {bool(greeted)}")
            # What the caller's end heard, as the simulator plays audio like FreeSWITCH does.
            heard = simulator.channels[answered].heard if answered in simulator.channels else None
            heard_seconds = heard.samples() / 8000 if heard is not None else 0.0
            form = settings.media.playback_for(settings.freeswitch_nodes[0].name)
            say(f"the caller heard {heard_seconds:.2f} s of the bot's {len(GREETING) / 8000:.2f} s greeting "
                f"({form} form)")
            with gevent.Timeout(5, False):  # let about a second of caller audio flow and echo
                while bot.calls and bot.calls[0].received["media"] < 50:
                    gevent.sleep(0.05)
            reply = session.post(f"{api}/calls/hangup", json={"call_uuid": answered}, timeout=10)
            say(f"POST /api/calls/hangup -> {reply.status_code} {reply.text.strip()}")
            for call_uuid in [answered, *refused]:
                controller.wait_status(call_uuid, FINAL, timeout=15)
            reply = session.get(f"{api}/calls/{answered}", timeout=10)
            say(f"GET /api/calls/{answered} -> {reply.status_code}\n{json.dumps(reply.json(), indent=2)}")
            if bot.calls:
                seen = bot.calls[0]
                say(f"the bot received: {dict(seen.received)}; marks echoed: {seen.marks_echoed}")
            ok = bool(greeted) and heard_seconds >= 0.99 * len(GREETING) / 8000
            say("call timelines:")
            for call_uuid, (_, status, reason) in zip([answered, *refused], [ANSWERED, *REFUSED]):
                call = Call.get_by_id(call_uuid)
                say(timeline(call))
                if (call.status, call.end_reason) != (status, reason):
                    ok = False
                    say(f"    UNEXPECTED: wanted status={status} end_reason={reason}")
            say("demo " + ("succeeded" if ok else "FAILED"))
            return 0 if ok else 1
        finally:
            gateway.stop()
            bot.stop()
            simulator.stop()
