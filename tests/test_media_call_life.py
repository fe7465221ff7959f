"""A call's bot media follows the call's life, end to end over real sockets: the simulator
(ESL, mod_audio_stream, and the shipped dialplan, so transfers run ``gateway_transfer.xml``),
the controller, the media bridge, MediaSessions and local bots, on SQLite and PostgreSQL.

* a blind transfer stops the bot's stream before the transfer is sent;
* a failed transfer comes back to the gateway: the call goes back to its bot, or ends with
  the failure's cause, as the account's ``on_transfer_failure`` says;
* after a gateway restart, an answered call gets its bot back (or is ended with a logged
  reason), and a call in a transfer is left to it;
* redirect in both playback forms, with the caller's audio gap logged.

The busy transfer target is the simulator's outcome rule (``gateway.simulator.outcomes``:
a number ending in 486 answers 486 Busy Here, so USER_BUSY)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import gevent
import pytest

from gateway.calls.controller import CallController, CallError
from gateway.calls.states import FINAL, Status
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings
from gateway.media import codec
from gateway.models import Account, Call, CallEvent, WebhookDelivery
from gateway.runtime import Gateway
from gateway.simulator import Outcome, Simulator
from gateway.simulator.audio_stream import module
from media_support import MediaRig, TwilioBot

DIALPLAN = Path(__file__).resolve().parent.parent / "dialplan"
CALLER = "+15550009999"
CALLEE = "+15550100001"  # answers (the simulator's answer delay)
TRANSFER_ANSWERS = "+15550100002"  # the transfer's far end answers: the call is bridged
TRANSFER_BUSY = "+15550100486"  # 486 Busy Here: USER_BUSY
TRANSFER_RINGS_THEN_BUSY = "+15550107486"
HOOK = "https://hooks.example.com/status"

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.05, dialplan_dir=str(DIALPLAN))
    # long enough to stop a gateway while the transfer rings
    simulator.set_outcome(TRANSFER_RINGS_THEN_BUSY, Outcome(final=486, provisional=180, delay=4.0))
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def rig(database, sim):
    made = []

    def make(settings=None):
        made.append(MediaRig(sim, settings or MediaSettings(playback="stream"), outbox=True))
        return made[-1]
    yield make
    for one in made:
        one.stop()


@pytest.fixture
def account(database):
    return Account.create(name="acme", default_webhook_url=HOOK)


class Processes:
    """Gateway processes (``runtime.Gateway``, as ``voicegw serve`` runs one) on one database
    and one simulator, started and stopped in turn: a restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: list[Gateway] = []

    def start(self) -> Gateway:
        gateway = Gateway(self.settings, originate_timeout=5)
        gateway.start(http=False)
        self.running.append(gateway)
        assert gateway.controller.wait_connected(5), "the gateway did not connect to the simulator"
        return gateway

    def stop(self, gateway: Gateway) -> None:
        self.running.remove(gateway)
        gateway.stop()


@pytest.fixture
def gateways(database_url, sim):
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    processes = Processes(Settings(database_url=database_url, http=HttpAddress("127.0.0.1", 0),
                                   freeswitch_nodes=(node,), media=MediaSettings(playback="stream")))
    yield processes
    for gateway in list(processes.running):
        processes.stop(gateway)


def entries(call_uuid: str, kind: str) -> list[dict]:
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == kind)
            .order_by(CallEvent.seq)]


def wait_entry(call_uuid: str, kind: str, event: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
    """The call's log entries of ``kind`` with that ``event``, once there are ``count``: the
    log is written by the controller's worker, so the table is looked at every 20 ms."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in entries(call_uuid, kind) if d.get("event") == event]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {kind} {event} in the call's log"
        gevent.sleep(0.02)


def answered(controller: CallController, sim, account, bot_url: str, form: str = "stream") -> Call:
    module(sim).playback = form  # the simulator plays back as the node is configured
    call = controller.originate(account.id, CALLEE, CALLER, socket_url=bot_url)
    controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    return call


def hang_up(controller: CallController, call: Call) -> Status:
    try:
        controller.hangup(call.uuid)
    except CallError:
        pass
    return controller.wait_status(call.uuid, FINAL, 5)


def deliveries(call_uuid: str) -> list[tuple[str, dict]]:
    rows = WebhookDelivery.select().where(WebhookDelivery.call_uuid == call_uuid).order_by(WebhookDelivery.id)
    return [(row.event_type, json.loads(row.body)) for row in rows]


def tone_frames(pcm: bytes) -> set[bytes]:
    ulaw = codec.l16_to_ulaw(pcm)
    return {ulaw[i:i + 160] for i in range(0, len(ulaw), 160)}


# -- a blind transfer stops the bot stream first ------------------------------------------------

def test_a_blind_transfer_stops_the_bot_stream_before_it_is_sent(rig, sim, bot, account):
    r = rig()
    call = answered(r.controller, sim, account, bot.url())
    bot.wait_event("media", count=10)
    stream = module(sim).streams[call.uuid]

    r.controller.transfer(call.uuid, TRANSFER_ANSWERS)

    bot.wait_event("stop")
    bot.wait_for(lambda: bot.peers[0].closed, 5, "the bot's socket closed")
    assert bot.events()[-1]["event"] == "stop"  # and nothing after it: the socket is closed
    assert call.uuid not in module(sim).streams and stream.state == "closed"
    ch = sim.wait_event(call.uuid, "CHANNEL_BRIDGE", timeout=5)  # the far end took the call
    assert ch.events.index("MEDIA_BUG_STOP") < ch.events.index("CHANNEL_UNPARK")  # stopped, then transferred
    r.controller.flush()
    commands = [c["command"] for c in entries(call.uuid, "command")]
    assert commands[-2:] == ["audio_stream_stop", "transfer"]
    ended = wait_entry(call.uuid, "media", "session_ended")
    assert ended[0]["reason"] == "transfer" and ended[0]["target"] == bot.url()
    media = [d["event"] for d in entries(call.uuid, "media")]
    assert "stream_failed" not in media and "hangup" not in media  # no failure policy
    assert Call.get_by_id(call.uuid).status == "in_progress"  # the call goes on, bridged
    assert len(bot.peers) == 1
    assert hang_up(r.controller, call) is Status.COMPLETED


# -- a failed transfer comes back -----------------------------------------------------------------

def test_a_failed_transfer_goes_back_to_the_bot_it_had(rig, sim, bot, account):
    r = rig()
    call = answered(r.controller, sim, account, bot.url("/sales"))
    bot.wait_event("media", count=5)

    r.controller.transfer(call.uuid, TRANSFER_BUSY)

    failed = wait_entry(call.uuid, "transfer", "transfer_failed")
    assert failed[0]["cause"] == "USER_BUSY"  # what the shipped dialplan left in gateway_transfer_result
    # a new session: the stream started again, the same target, the bot connected again
    bot.wait_for(lambda: len(bot.peers) == 2, 10, "the bot's second connection")
    assert bot.peers[1].path == "/sales"
    bot.wait_event("start", peer_index=1)
    assert [m["event"] for m in bot.events(peer_index=1)[:2]] == ["connected", "start"]
    sim.set_caller_audio(call.uuid, codec.tone(2.0, 440))
    tone = tone_frames(codec.tone(2.0, 440))
    bot.wait_for(lambda: sum(f in tone for f in _frames(bot.caller_audio(1))) >= 20, 10, "the caller's audio")
    assert call.uuid in module(sim).streams
    ch = sim.channels[call.uuid]
    assert ch.variables.get("originate_failed_cause") == "USER_BUSY"
    assert ch.variables.get("gateway_transfer_result") is None  # unset once taken back
    targets = [d["target"] for d in entries(call.uuid, "media") if d["event"] == "media_target"]
    assert targets == [bot.url("/sales")] * 2
    assert wait_entry(call.uuid, "media", "bot_back")[0]["after"] == "transfer"
    wait_entry(call.uuid, "media", "session_established", count=2)
    assert Call.get_by_id(call.uuid).status == "in_progress"
    assert hang_up(r.controller, call) is Status.COMPLETED
    r.controller.flush()
    assert [kind for kind, _ in deliveries(call.uuid)] == ["call.answered", "call.completed"]


def test_a_failed_transfer_ends_the_call_with_its_cause_when_the_account_says_so(rig, sim, bot, account):
    Account.update(on_transfer_failure="hangup").where(Account.id == account.id).execute()
    r = rig()
    call = answered(r.controller, sim, account, bot.url())
    bot.wait_event("start")

    r.controller.transfer(call.uuid, TRANSFER_BUSY)

    assert r.controller.wait_status(call.uuid, FINAL, 10) is Status.COMPLETED
    row = Call.get_by_id(call.uuid)
    assert (row.end_reason, row.hangup_cause) == ("completed", "USER_BUSY")
    assert wait_entry(call.uuid, "transfer", "transfer_failed")[0]["cause"] == "USER_BUSY"
    hangup = wait_entry(call.uuid, "transfer", "hangup")[0]
    assert (hangup["reason"], hangup["cause"]) == ("transfer_failed", "USER_BUSY")
    assert len(bot.peers) == 1  # no bot again
    r.controller.flush()
    completed = [body for kind, body in deliveries(call.uuid) if kind == "call.completed"]
    assert completed[0]["hangup_cause"] == "USER_BUSY"


def test_a_failed_transfer_of_a_call_without_a_bot_ends_it_with_its_cause(database, sim, account):
    controller = CallController([NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")],
                                command_timeout=2.0)
    controller.start()
    try:
        assert controller.wait_connected(5)
        call = controller.originate(account.id, CALLEE, CALLER)
        controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        controller.transfer(call.uuid, TRANSFER_BUSY)
        assert controller.wait_status(call.uuid, FINAL, 10) is Status.COMPLETED
        assert Call.get_by_id(call.uuid).hangup_cause == "USER_BUSY"
        hangup = wait_entry(call.uuid, "transfer", "hangup")[0]
        assert (hangup["cause"], hangup["note"]) == ("USER_BUSY", "no bot to go back to")
    finally:
        controller.stop()


# -- a gateway restart ---------------------------------------------------------------------------

def test_after_a_restart_an_answered_call_gets_its_bot_back(gateways, sim, bot):
    first = gateways.start()
    account = Account.create(name="acme")
    call = answered(first.controller, sim, account, bot.url("/support"))
    bot.wait_event("media", count=5)
    gateways.stop(first)  # the bot's session ends with the process ...
    bot.wait_event("stop")
    old = module(sim).streams[call.uuid]
    assert old.state == "disconnected"  # ... but mod_audio_stream's media bug is still attached

    second = gateways.start()

    bot.wait_for(lambda: len(bot.peers) == 2, 15, "the bot's second connection")
    assert bot.peers[1].path == "/support"
    sim.set_caller_audio(call.uuid, codec.tone(2.0, 440))
    tone = tone_frames(codec.tone(2.0, 440))
    bot.wait_for(lambda: sum(f in tone for f in _frames(bot.caller_audio(1))) >= 20, 15, "the caller's audio")
    new = module(sim).streams[call.uuid]
    assert new is not old and new.state == "connected"
    second.controller.flush()
    assert wait_entry(call.uuid, "media", "bot_back")[0]["after"] == "reattach"
    commands = [c for c in entries(call.uuid, "command") if c["command"].startswith("audio_stream")]
    # the new process stopped the old stream first (no error), then started its own
    assert [(c["command"], c.get("error")) for c in commands[-2:]] == [("audio_stream_stop", None),
                                                                       ("audio_stream_start", None)]
    assert "stream_start_failed" not in [d["event"] for d in entries(call.uuid, "media")]
    assert hang_up(second.controller, call) is Status.COMPLETED


def test_after_a_restart_a_call_whose_bot_is_gone_is_hung_up_with_a_reason(gateways, sim, bot):
    first = gateways.start()
    account = Account.create(name="acme")
    call = answered(first.controller, sim, account, bot.url())
    bot.wait_event("start")
    gateways.stop(first)
    bot.stop()  # and the bot is gone too

    second = gateways.start()

    assert second.controller.wait_status(call.uuid, FINAL, 15) is Status.COMPLETED
    assert Call.get_by_id(call.uuid).hangup_cause == "SERVICE_UNAVAILABLE"
    assert wait_entry(call.uuid, "media", "hangup")[-1]["reason"] == "bot_unreachable"


def test_after_a_restart_a_call_in_a_transfer_is_left_to_it(gateways, sim, bot):
    first = gateways.start()
    account = Account.create(name="acme")
    call = answered(first.controller, sim, account, bot.url())
    bot.wait_event("start")
    first.controller.transfer(call.uuid, TRANSFER_ANSWERS)
    sim.wait_event(call.uuid, "CHANNEL_BRIDGE", timeout=5)
    gateways.stop(first)

    second = gateways.start()

    note = wait_entry(call.uuid, "reconcile", "reattached")[0]
    assert note["application"] == "bridge"
    assert len(bot.peers) == 1 and call.uuid not in module(sim).streams  # no bot in a bridged call
    assert hang_up(second.controller, call) is Status.COMPLETED


def test_a_transfer_that_failed_while_the_gateway_was_down_comes_back_to_the_bot(gateways, sim, bot):
    first = gateways.start()
    account = Account.create(name="acme")
    call = answered(first.controller, sim, account, bot.url())
    bot.wait_event("start")
    first.controller.transfer(call.uuid, TRANSFER_RINGS_THEN_BUSY)
    gateways.stop(first)  # while it rings
    assert "gateway_transfer_result" not in sim.channels[call.uuid].variables, "failed before the gateway was down"
    ch = sim.wait_for(lambda: (c := sim.channels.get(call.uuid)) and c.variables.get("gateway_transfer_result")
                      and c.events.count("CHANNEL_PARK") >= 2 and c, 10)
    assert ch.variables["gateway_transfer_result"] == "USER_BUSY"

    second = gateways.start()

    assert wait_entry(call.uuid, "transfer", "transfer_failed")[0]["cause"] == "USER_BUSY"  # read with uuid_getvar
    bot.wait_for(lambda: len(bot.peers) == 2, 15, "the bot's second connection")
    bot.wait_event("media", count=5, peer_index=1, timeout=15)
    assert hang_up(second.controller, call) is Status.COMPLETED


# -- redirect in both playback forms ----------------------------------------------------------

@pytest.mark.parametrize("form", ["files", "stream"])
def test_redirect_in_both_playback_forms_logs_the_caller_audio_gap(rig, sim, bot, account, form):
    other = "stream" if form == "files" else "files"
    node = f"127.0.0.1:{sim.port}"
    r = rig(MediaSettings(playback=other, playback_nodes=((node, form),)))  # the node's own form wins
    second = TwilioBot()
    try:
        call = answered(r.controller, sim, account, bot.url("/first"), form)
        sim.set_caller_audio(call.uuid, codec.tone(2.0, 440))
        bot.wait_event("media", count=10)

        r.media.redirect(call.uuid, second.url("/second"))

        bot.wait_event("stop")
        second.wait_event("start")
        assert [m["event"] for m in second.events()[:2]] == ["connected", "start"]
        tone = tone_frames(codec.tone(2.0, 440))
        second.wait_for(lambda: sum(f in tone for f in _frames(second.caller_audio())) >= 20, 10,
                        "the caller's audio at the new bot")
        redirect = wait_entry(call.uuid, "media", "redirect")[0]
        assert (redirect["from"], redirect["to"]) == (bot.url("/first"), second.url("/second"))
        assert isinstance(redirect["caller_audio_gap_ms"], float)
        assert [d["playback"] for d in entries(call.uuid, "media") if d["event"] == "media_target"] == [form]
        assert hang_up(r.controller, call) is Status.COMPLETED
    finally:
        second.stop()


def _frames(ulaw: bytes) -> list[bytes]:
    return [ulaw[i:i + 160] for i in range(0, len(ulaw) - 159, 160)]
