"""Every greenlet has an owner that stops it, a media session holds no database connection
while it waits, a failing session step still ends the call, and ``Gateway.stop`` drains
live work before the database closes.

These are the causes of the suite's old teardown hang: a ``MediaSessions._finish``
greenlet nobody stopped held a pooled PostgreSQL connection while the test's database
was closed, and ``close_all()`` then blocked on that connection's lock.
"""

from __future__ import annotations

import gevent
import pytest
from gevent.event import Event as Flag
from playhouse.pool import PooledDatabase

from gateway import models
from gateway.calls.bot_target import BotTargets
from gateway.calls.states import FINAL, Status
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings
from gateway.greenlets import GreenletOwner
from gateway.models import Account, CallEvent
from gateway.models.db import close_database
from gateway.runtime import Gateway
from gateway.simulator import Simulator
from gevent.server import StreamServer

from media_support import MediaRig, TwilioBot

CALLER = "+15550009999"
CALLEE = "+15550100001"

# The bots listen on 127.0.0.1, which customer bot URLs may not reach unless allow-listed.
pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.02)
    simulator.start()
    yield simulator
    simulator.stop()


class MuteBot:
    """A bot that accepts the TCP connection and never answers the WebSocket upgrade:
    the session's connect step waits on it until its timeout."""

    def __init__(self) -> None:
        self.arrived = Flag()
        self._server = StreamServer(("127.0.0.1", 0), self._hold)
        self._server.start()

    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.server_port}/bot"

    def _hold(self, sock, address) -> None:
        self.arrived.set()
        while sock.recv(65536):
            pass

    def wait(self, timeout: float = 5.0) -> None:
        assert self.arrived.wait(timeout), "the session never reached the bot"

    def stop(self) -> None:
        self._server.stop(timeout=1)


@pytest.fixture
def account(database):
    return Account.create(name="acme")


def media_log(call_uuid):
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "media")
            .order_by(CallEvent.seq)]


# -- the owner ---------------------------------------------------------------------------------

def test_owner_lets_work_finish_then_kills_what_is_left_and_starts_nothing_after():
    owner = GreenletOwner("test")
    released, finished, cleaned = Flag(), [], []

    def quick():
        released.wait()
        finished.append("quick")

    def stuck():
        try:
            Flag().wait()
        finally:
            cleaned.append("stuck")

    owner.spawn(quick)
    owner.spawn(stuck)
    gevent.spawn_later(0.05, released.set)
    owner.stop(grace=0.5)
    assert finished == ["quick"] and cleaned == ["stuck"] and len(owner) == 0
    assert owner.spawn(quick) is None and owner.spawn_later(0.01, quick) is None


def test_owner_logs_a_failure_instead_of_passing_it_on(caplog):
    owner = GreenletOwner("test")

    def broken():
        raise RuntimeError("boom")

    owner.spawn(broken)
    assert owner.join(2)
    assert any("broken failed" in r.getMessage() for r in caplog.records)
    owner.stop(grace=0)


def test_a_pending_spawn_later_is_cancelled_by_stop():
    owner = GreenletOwner("test")
    ran = []
    owner.spawn_later(0.2, ran.append, 1)
    owner.stop(grace=0)
    gevent.sleep(0.3)  # past the moment it would have run: proving a negative needs the wait
    assert ran == []


# -- media sessions ----------------------------------------------------------------------------

def test_media_sessions_stop_joins_the_steps_it_started(database, sim, account):
    """A bot that never completes its WebSocket upgrade keeps ``_connect_first`` waiting;
    ``stop`` must not return while that step still runs."""
    silent = MuteBot()
    rig = MediaRig(sim, MediaSettings(playback="stream", bot_connect_timeout=20))
    try:
        call = rig.controller.originate(account.id, CALLEE, CALLER, socket_url=silent.url())
        rig.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        silent.wait()
        assert len(rig.media._greenlets) > 0
        rig.media.stop(grace=0.2)
        assert len(rig.media._greenlets) == 0
    finally:
        rig.bridge.stop()
        rig.controller.stop()
        silent.stop()


def test_a_session_waiting_for_its_bot_holds_no_database_connection(database, sim, account):
    if not isinstance(database, PooledDatabase):
        pytest.skip("connections are counted in PostgreSQL's pool")
    silent = MuteBot()
    rig = MediaRig(sim, MediaSettings(playback="stream", bot_connect_timeout=20))
    try:
        database.close()
        idle = len(database._in_use)  # the controller's worker keeps one for its writes
        call = rig.controller.originate(account.id, CALLEE, CALLER, socket_url=silent.url())
        rig.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        database.close()
        silent.wait()  # the session is now parked in the bot's upgrade
        held = len(database._in_use) - idle
        assert held == 0, f"{held} connection(s) held while the bot connects"
    finally:
        rig.media.stop(grace=0.2)  # the connect step waits on the mute bot: no point in waiting
        rig.stop()
        silent.stop()


def test_a_failing_session_step_still_hangs_the_call_up(database, sim, account, monkeypatch):
    def broken(self, call, account):
        raise RuntimeError("a bug in deciding the target")

    monkeypatch.setattr(BotTargets, "decide", broken)
    bot = TwilioBot()
    rig = MediaRig(sim, MediaSettings(playback="stream"))
    try:
        call = rig.controller.originate(account.id, CALLEE, CALLER, socket_url=bot.url())
        assert rig.controller.wait_status(call.uuid, FINAL, 10) in FINAL
        rig.controller.flush()
        assert {"event": "hangup", "reason": "media_failed", "cause": "SERVICE_UNAVAILABLE"} in media_log(call.uuid)
    finally:
        rig.stop()
        bot.stop()


# -- the whole process ---------------------------------------------------------------------------

def test_gateway_stop_drains_live_sessions_before_the_database_closes(database_url, sim):
    """A call whose session is in flight when the gateway stops: ``stop`` returns, every
    pooled connection is back, and the database fixture can close it (no hang)."""
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    silent = MuteBot()
    settings = Settings(database_url=database_url, http=HttpAddress("127.0.0.1", 0), freeswitch_nodes=(node,),
                        media=MediaSettings(enabled=True, listen=HttpAddress("127.0.0.1", 0),
                                            bot_connect_timeout=20))
    gateway = Gateway(settings, originate_timeout=5)
    gateway.start(http=False)
    try:
        assert gateway.controller.wait_connected(5)
        account = Account.create(name="acme")
        call = gateway.controller.originate(account.id, CALLEE, CALLER, socket_url=silent.url())
        gateway.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        silent.wait()
    finally:
        with gevent.Timeout(30, AssertionError("Gateway.stop did not return")):
            gateway.stop()
        silent.stop()
    models.database.initialize(None)  # the gateway bound the models to its database
    db = gateway.db
    if isinstance(db, PooledDatabase):
        assert db._in_use == {}


def test_gateway_hands_the_admission_wait_setting_to_every_node(database_url):
    node = NodeConfig("127.0.0.1:1", "127.0.0.1", 1, "ClueCon")
    settings = Settings(database_url=database_url, freeswitch_nodes=(node,), admission_wait=7.5,
                        media=MediaSettings(enabled=False))
    gateway = Gateway(settings)
    try:
        assert [p.admission.wait for p in gateway.controller.pacers.values()] == [7.5]
    finally:
        close_database(gateway.db)
        models.database.initialize(None)
