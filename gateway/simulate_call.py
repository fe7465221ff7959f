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
  After ``--seconds`` the caller hangs up (``uuid_kill`` of our loopback leg), and the
  call's log, or its refusal, is read from the gateway's database and printed.  The
  gateway's call is the other loopback leg (``other_loopback_leg_uuid`` on ours, as
  FreeSWITCH's mod_loopback sets it; see research/fs-captures/loopback_bgapi_*).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid as uuidlib
import wave
from pathlib import Path

import gevent
from gevent.event import AsyncResult, Event as Flag

from gateway import net_policy, secret_keys
from gateway.cli_common import open_database
from gateway.calls.controller import CallError
from gateway.calls.dialstring import check_dialable
from gateway.domain import FINAL, Status
from gateway.calls.timeline import timeline
from gateway.config import HttpAddress, NodeConfig, Settings
from gateway.dialplan_names import PUBLIC_CONTEXT
from gateway.esl import commands
from gateway.esl.connection import CommandFailed, CommandTimeout, ESLLink
from gateway.media.codec import tone
from gateway.models import Account, Call, RefusedCall
from gateway.runtime import Gateway
from gateway.simulator import Simulator

ANSWER_WAIT = 30.0  # seconds the gateway may take to answer or refuse the injected call
RECORD_WAIT = 10.0  # seconds for the call to end, and for the gateway's record to show it
EVENT_WAIT = 5.0  # seconds for our loopback leg's CHANNEL_CREATE


def caller_audio(path: str | None, seconds: float) -> bytes:
    """8 kHz mono 16-bit PCM for the simulated caller: a WAV file's, or a tone."""
    if not path:
        return tone(seconds, 440.0)
    with wave.open(path, "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (8000, 1, 2):
            raise ValueError(f"{path}: caller audio must be 8 kHz mono 16-bit WAV")
        return wav.readframes(wav.getnframes())


def named_bot_addresses(socket_url: str) -> list[str]:
    """The addresses of the bot named on the command line. Naming it is the operator's
    own choice, so they are allow-listed for the run even when internal
    (``ws://localhost:9000/``; see ``gateway.net_policy``)."""
    try:
        endpoint = net_policy.split_url(socket_url, ("ws", "wss"), "--socket-url")
        return [sockaddr[0].split("%", 1)[0] for _, sockaddr in
                net_policy.policy.resolver(endpoint.host, endpoint.port)]
    except (ValueError, OSError):
        return []  # not a bot URL, or a name without an address: the call's log says so


def call_bot(socket_url: str, seconds: float, audio: str | None, out=sys.stdout) -> int:
    say = lambda text="": print(text, file=out)  # noqa: E731
    # A throw-away database, and a throw-away key for the secrets stored in it.
    with tempfile.TemporaryDirectory(prefix="voicegw-simulate-") as tmp, \
            net_policy.policy.allowing(*named_bot_addresses(socket_url)), \
            secret_keys.using(secret_keys.SecretKeys.throwaway("simulate-call's key")):
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
            say(timeline(row))
            return 0 if row.status == "completed" else 1
        finally:
            gateway.stop()
            simulator.stop()


def inject(node: NodeConfig, did: str, caller: str, caller_name: str, seconds: float, database_url: str,
           out=sys.stdout) -> int:
    """Inject an inbound call to ``did``, hang it up after ``seconds`` (unless it ended
    before), then print what the gateway recorded about it in ``database_url``: the
    call's timeline, or why it was refused.  0 once the gateway's record shows the call
    ended, 1 otherwise."""
    check_dialable(did)
    check_dialable(caller)
    if not seconds > 0:
        raise ValueError("--seconds must be more than 0")
    say = lambda text="": print(text, file=out)  # noqa: E731
    leg = str(uuidlib.uuid4())
    gateway_leg: AsyncResult = AsyncResult()
    ended = Flag()

    def on_event(event) -> None:
        if event.unique_id != leg:
            return
        if event.name == "CHANNEL_CREATE":  # names the loopback leg that enters the dialplan
            gateway_leg.set(event.get("variable_other_loopback_leg_uuid"))
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            ended.set()

    link = ESLLink(node.host, node.port, node.password, on_event=on_event)
    link.connect()
    try:
        link.command(commands.filter_events("Unique-ID", leg))
        link.command(commands.subscribe("CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE"))
        originate = commands.originate({"origination_uuid": leg, "origination_caller_id_number": caller,
                                        "origination_caller_id_name": caller_name or caller},
                                       f"loopback/{did}/{PUBLIC_CONTEXT}")
        try:
            reply = link.api(originate, timeout=ANSWER_WAIT)
        except CommandFailed as exc:
            reply = exc.reply  # refused, or no route: the gateway's record says which
        except CommandTimeout:
            reply = f"-ERR no answer within {ANSWER_WAIT:g}s"
        say(f"injected: {reply.strip()} (loopback leg {leg}; the {PUBLIC_CONTEXT} context routes {did})")
        answered = reply.startswith("+OK")
        try:  # events queued while the blocking ``api`` ran may come after its reply
            call_uuid = gateway_leg.get(timeout=EVENT_WAIT)
        except gevent.Timeout:
            call_uuid = None
        if answered:
            say(f"call {call_uuid} answered; the caller hangs up in {seconds:g}s")
        if not ended.wait(seconds if answered else 0):
            try:
                link.api(commands.kill(leg))
            except CommandFailed:
                pass  # gone meanwhile
            ended.wait(RECORD_WAIT)
    finally:
        link.close()
    if not call_uuid:
        say("simulate-call FAILED: FreeSWITCH created no call for the DID")
        return 1
    with open_database(database_url):
        return _report(call_uuid, database_url, say)


def _report(call_uuid: str, database_url: str, say) -> int:
    """Print the gateway's record of ``call_uuid`` once it shows the call ended (the
    gateway may run in another process: its row is read until it is final)."""
    deadline = time.monotonic() + RECORD_WAIT
    while True:
        call = Call.get_or_none(Call.uuid == call_uuid)
        refused = RefusedCall.get_or_none(RefusedCall.call_uuid == call_uuid)
        if (call is not None and Status(call.status) in FINAL) or (call is None and refused is not None):
            break
        if time.monotonic() > deadline:
            state = f"is still {call.status}" if call is not None else "is not there"
            say(f"simulate-call FAILED: the gateway's record of call {call_uuid} {state} in {database_url}")
            return 1
        gevent.sleep(0.1)
    if refused is not None:
        say(f"refused by the gateway: reason={refused.reason} cause={refused.hangup_cause}")
    if call is not None:
        say(f"call ended: status={call.status} end_reason={call.end_reason} cause={call.hangup_cause} "
            f"billsec={call.billsec}")
        say(timeline(call))
    return 0
