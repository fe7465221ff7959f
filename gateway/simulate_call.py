"""``voicegw simulate-call``: put a call on a bot, or into a DID, with no phone line.

Two uses:

* ``--socket-url ws://localhost:9000/`` tests *your bot*: the simulator, a gateway and
  its media bridge start in this process, a call is placed and answered, the bot gets the
  Twilio Media Streams session (caller audio: a tone, or ``--audio file.wav``), and after
  ``--seconds`` the call is hung up and its log (and any transcript) printed;
* ``--did +14155550100 --esl 127.0.0.1:8021:ClueCon`` injects an inbound call into a
  running simulator *or a real FreeSWITCH*, the way FreeSWITCH itself does it:
  ``originate loopback/<did>/public`` makes a leg that enters the ``public`` context as
  an inbound call, so the shipped dialplan and the gateway route it as a carrier's call.
"""

from __future__ import annotations

import sys
import tempfile
import uuid as uuidlib
import wave
from pathlib import Path

import gevent

from gateway.calls.controller import CallError
from gateway.calls.dialstring import check_dialable, quote_var
from gateway.calls.states import FINAL, Status
from gateway.config import HttpAddress, NodeConfig, Settings
from gateway.dialplan_names import PUBLIC_CONTEXT
from gateway.esl.connection import ESLLink
from gateway.media.codec import tone
from gateway.models import Account, Call, CallEvent
from gateway.runtime import Gateway
from gateway.simulator import Simulator


def caller_audio(path: str | None, seconds: float) -> bytes:
    """8 kHz mono 16-bit PCM for the simulated caller: a WAV file's, or a tone."""
    if not path:
        return tone(seconds, 440.0)
    with wave.open(path, "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (8000, 1, 2):
            raise ValueError(f"{path}: caller audio must be 8 kHz mono 16-bit WAV")
        return wav.readframes(wav.getnframes())


def call_bot(socket_url: str, seconds: float, audio: str | None, out=sys.stdout) -> int:
    say = lambda text="": print(text, file=out)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="voicegw-simulate-") as tmp:
        simulator = Simulator(port=0, answer_delay=0.2)
        simulator.start()
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'simulate.sqlite3'}", http=HttpAddress("127.0.0.1", 0),
            freeswitch_nodes=(NodeConfig("sim", "127.0.0.1", simulator.port, "ClueCon"),),
        )
        gateway = Gateway(settings)
        gateway.start(http=False)
        try:
            controller = gateway.controller
            if not controller.wait_connected(10):
                say("simulate-call FAILED: the gateway did not connect to the simulator")
                return 1
            account = Account.create(name="simulate-call")
            call = controller.originate(account.id, "+14152400001", "+14155550100", "Simulated Caller",
                                        socket_url=socket_url)
            status = controller.wait_status(call.uuid, [Status.IN_PROGRESS, *FINAL], timeout=10)
            if status is Status.IN_PROGRESS:
                simulator.set_caller_audio(call.uuid, caller_audio(audio, seconds))
                say(f"call {call.uuid} answered; talking to {socket_url} for {seconds:g}s")
                with gevent.Timeout(seconds, False):
                    controller.wait_status(call.uuid, FINAL, timeout=seconds + 1)
                try:
                    controller.hangup(call.uuid)
                except CallError:
                    pass  # the bot or the policy ended it already
                controller.wait_status(call.uuid, FINAL, timeout=10)
            row = Call.get_by_id(call.uuid)
            say(f"call ended: status={row.status} end_reason={row.end_reason} cause={row.hangup_cause} "
                f"billsec={row.billsec}")
            for event in CallEvent.select().where(CallEvent.call == call.uuid).order_by(CallEvent.seq):
                say(f"  {event.at:%H:%M:%S.%f} {event.kind:<10} {event.to_status or '':<12} {event.detail}")
            return 0 if row.status == "completed" else 1
        finally:
            gateway.stop()
            simulator.stop()


def inject(node: NodeConfig, did: str, caller: str, caller_name: str, out=sys.stdout) -> int:
    check_dialable(did)
    check_dialable(caller)
    link = ESLLink(node.host, node.port, node.password, on_event=lambda event: None)
    link.connect()
    try:
        leg = str(uuidlib.uuid4())
        variables = ",".join(f"{k}={quote_var(v)}" for k, v in (
            ("origination_uuid", leg), ("origination_caller_id_number", caller),
            ("origination_caller_id_name", caller_name or caller)))
        reply = link.api(f"originate {{{variables}}}loopback/{did}/{PUBLIC_CONTEXT} &park()", timeout=30)
        print(f"injected: {reply.strip()} (loopback leg {leg}; the {PUBLIC_CONTEXT} context routes {did})",
              file=out)
        return 0
    finally:
        link.close()
