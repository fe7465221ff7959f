"""``voicegw demo --agents``: a voice agent built by an autonomous agent over the
voice-agent admin surface, taking an inbound call on the simulator.

Starts the FreeSWITCH simulator (running the shipped ``dialplan/``, as inbound calls
need), the example bot and a gateway on a throw-away SQLite database. The operator's part
is done directly: an account, one phone number it owns, and an autonomous agent with a
key. The autonomous agent's part goes over HTTP with that key: it creates a voice agent
(``POST /api/agent-api/voice/agents``, a WebSocket agent served by the example bot) and
attaches the number to it (``POST …/agents/:id/phone``). A caller then dials the number;
the call reaches the agent's bot, which greets them; the demo hangs up and reads the
agent's conversations back (``GET …/agents/:id/conversations``). Exits non-zero unless
the call reached the bot and completed.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import requests

from gateway import net_policy, secret_keys
from gateway.auth.keys import create_key
from gateway.calls.timeline import timeline
from gateway.config import HttpAddress, NodeConfig, Settings
from gateway.domain import FINAL, Status
from gateway.example_bot import EchoBot
from gateway.models import Account, Agent, Call, PhoneNumber
from gateway.runtime import Gateway
from gateway.simulator import Simulator

DID = "+14155550142"
CALLER = "+15557654321"
SHIPPED_DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"


def run(out=sys.stdout) -> int:
    say = lambda text="": print(text, file=out)  # noqa: E731
    if not (SHIPPED_DIALPLAN / "public.xml").is_file():
        say(f"demo --agents needs the shipped dialplan at {SHIPPED_DIALPLAN} (a source checkout)")
        return 2
    # As in `voicegw demo`: everything is on 127.0.0.1, which the demo (the operator) allows.
    with tempfile.TemporaryDirectory(prefix="voicegw-demo-") as tmp, net_policy.policy.allowing("127.0.0.1"), \
            secret_keys.using(secret_keys.SecretKeys.throwaway("the demo's key")):
        simulator = Simulator(port=0, answer_delay=0.2, dialplan_dir=str(SHIPPED_DIALPLAN))
        simulator.start()
        bot = EchoBot()
        bot.start()
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'demo.sqlite3'}", http=HttpAddress("127.0.0.1", 0),
            freeswitch_nodes=(NodeConfig(f"127.0.0.1:{simulator.port}", "127.0.0.1", simulator.port, "ClueCon"),),
        )
        gateway = Gateway(settings, originate_timeout=3)
        gateway.start()
        try:
            connected = gateway.controller.wait_connected(10)
            api = f"http://127.0.0.1:{gateway.http.server_port}/api/agent-api/voice"
            say(f"simulated FreeSWITCH on 127.0.0.1:{simulator.port} (connected: {connected}), "
                f"example bot at {bot.url}, voice-agent admin API at {api}")
            # The operator: an account, a number it owns, an autonomous agent and its key.
            account = Account.create(name="demo")
            PhoneNumber.create(account=account, e164=DID, route="bot", socket_url=bot.url)
            builder = Agent.create(account=account, key="ops-agent", name="Ops agent", driver="websocket",
                                   driver_ref=bot.url)
            _, secret = create_key(account, ["voice:read", "voice:write"], owner_agent=builder)
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {secret}"

            def ask(method: str, path: str, **body) -> dict:
                reply = session.request(method, api + path, json=body or None, timeout=10)
                say(f"{method} {path} -> {reply.status_code} {reply.text.strip()}")
                if reply.status_code >= 300:
                    raise SystemExit(f"demo FAILED: {method} {path} answered {reply.status_code}")
                return reply.json()

            # The autonomous agent, over HTTP with its key.
            agent = ask("POST", "/agents", name="Front desk", driver="websocket", driver_ref=bot.url,
                        prompt="You answer the front desk's phone.", first_message="Hello, front desk.")
            ask("POST", f"/agents/{agent['id']}/phone", phone_number=DID)

            call_uuid = simulator.inject_inbound(DID, CALLER, "Demo Caller")
            say(f"a caller dials {DID}")
            simulator.wait_for(lambda: Call.get_or_none(Call.uuid == call_uuid) is not None, timeout=5)
            status = gateway.controller.wait_status(call_uuid, [Status.IN_PROGRESS], timeout=10)
            greeted = bool(bot.greeted.wait(10))
            say(f"the call is {status.value if status else 'not answered'}; the agent's bot greeted the caller:"
                f" {greeted}")
            gateway.controller.hangup(call_uuid)
            gateway.controller.wait_status(call_uuid, FINAL, timeout=15)
            conversations = ask("GET", f"/agents/{agent['id']}/conversations")
            call = Call.get_by_id(call_uuid)
            say(timeline(call))
            ok = (greeted and call.status == "completed" and call.agent_id == int(agent["id"])
                  and [c["id"] for c in conversations["conversations"]] == [call_uuid])
            say("demo " + ("succeeded" if ok else "FAILED"))
            return 0 if ok else 1
        finally:
            gateway.stop()
            bot.stop()
            simulator.stop()
