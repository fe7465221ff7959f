"""Two ``voicegw serve`` processes dial one campaign of 200 contacts on one PostgreSQL; one
is killed (SIGKILL) mid-run and started again. Every contact ends in a final state, nobody
is dialled twice for one attempt (the simulator's own record of originates), and retries
follow the campaign's settings.

PostgreSQL only: that is where several processes share a database (the claims of SQLite
are covered in one process by test_dialer_campaign)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import gevent
import pytest
import requests

from gateway.auth.keys import create_key
from gateway.dialer import approvals, campaigns, contacts
from gateway.models import Account, Agent, Call, CampaignContact, ContactAttempt, VoiceCampaign
from gateway.simulator import Simulator
from gateway.simulator.outcomes import Outcome

MIX = {
    "completed": Outcome(final=200, hangup_after=0.3),
    "busy": Outcome(final=486, delay=0.05),
    "no_answer": Outcome(final=480, delay=0.2, cause="NO_ANSWER"),
    "failed": Outcome(final=603, delay=0.05),
}
ORDER = list(MIX)
MAX_ATTEMPTS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.05)
    simulator.start()
    yield simulator
    simulator.stop()


class Serve:
    """One ``voicegw serve`` process: API, controller and dialer, as in production."""

    def __init__(self, tmp_path, name, database_url, sim) -> None:
        self.port = free_port()
        env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_HTTP": f"127.0.0.1:{self.port}",
               "FREESWITCH_NODES": f"127.0.0.1:{sim.port}:ClueCon", "GATEWAY_MEDIA_ENABLED": "false",
               "GATEWAY_MEDIA_DIR": str(tmp_path / "media")}
        env.pop("GATEWAY_CONFIG", None)
        self.log_path = tmp_path / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout=30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            gevent.sleep(0.1)  # readiness of another process, bounded by the deadline
        raise AssertionError(f"serve did not become healthy:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        gevent.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_killed_dialer_neither_dials_anyone_twice_nor_forgets_anyone(database, database_url, sim, tmp_path):
    if not database_url.startswith("postgres"):
        pytest.skip("several serve processes share a PostgreSQL database")
    account = Account.create(name="acme", region="US", default_caller_id="+12125550100", balance=1000)
    agent = Agent.create(account=account, key="closer", name="Closer", driver="websocket",
                         driver_ref="wss://agents.example.com/closer")
    phones = [f"+1212{3000000 + i:07d}" for i in range(200)]
    expected = {}
    for index, phone in enumerate(phones):
        expected[phone] = ORDER[index % 4]
        sim.set_outcome(phone, MIX[expected[phone]])
    settings = campaigns.clean_settings(account, agent, name="Crash", from_number=None, window=None, timezone=None,
                                        calls_per_second=15, max_concurrent=20, max_attempts=MAX_ATTEMPTS,
                                        retry_backoff_seconds=0)
    campaign = campaigns.create(account, settings, None)
    with database.atomic():
        contacts.load(account, campaign, [{"phone": p} for p in phones])
    database.close()

    processes = [Serve(tmp_path, "serve1", database_url, sim), Serve(tmp_path, "serve2", database_url, sim)]
    try:
        for process in processes:
            process.wait_healthy()
        api_key, _ = create_key(account, ["voice:campaign:execute"])
        assert approvals.approve(approvals.request(campaign, "start", api_key).id, "Dana").status == "executed"
        database.close()
        _wait(lambda: ContactAttempt.select().count() >= 80, 60, "a third of the campaign to be dialled")
        processes[0].kill()
        restarted = Serve(tmp_path, "serve1-again", database_url, sim)
        processes.append(restarted)
        restarted.wait_healthy()
        _wait(lambda: VoiceCampaign.get_by_id(campaign.id).status == "completed", 120, "the campaign to complete")
    finally:
        for process in processes:
            process.stop()

    dialled = Counter(ch.initial_profile.destination_number for ch in sim.history.values()
                      if ch.direction == "outbound")
    originated = {ch.uuid for ch in sim.history.values() if ch.direction == "outbound"}
    attempts = list(ContactAttempt.select())
    by_phone = {c.id: c.phone for c in CampaignContact.select()}
    assert originated <= {a.call_uuid for a in attempts}, "a call was dialled outside a claimed attempt"
    gone = {call.uuid for call in Call.select().where(Call.hangup_cause == "CHANNEL_GONE")}
    per_contact = Counter(by_phone[a.contact_id] for a in attempts)
    crashed = {by_phone[a.contact_id] for a in attempts if a.call_uuid in gone}
    states = {c.phone: c.state for c in CampaignContact.select()}
    assert all(state in ("completed", "no_answer", "busy", "failed") for state in states.values()), Counter(
        states.values())
    for phone in phones:
        assert dialled[phone] <= per_contact[phone] <= MAX_ATTEMPTS, phone
        if phone in crashed:
            continue  # its call went down with the killed process: an attempt, dialled at most once
        assert dialled[phone] == per_contact[phone], phone
        assert states[phone] == expected[phone], phone
        assert per_contact[phone] == (1 if expected[phone] == "completed" else MAX_ATTEMPTS), phone
    assert all(a.outcome is not None and a.call_uuid for a in attempts)
    assert len({a.claimed_by for a in attempts}) == 3, "both dialers and the restarted one took a share"
    print(f"{len(attempts)} attempts, {sum(dialled.values())} originates, {len(crashed)} contacts hit by the kill")
