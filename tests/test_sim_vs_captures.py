"""The simulator against real FreeSWITCH 1.10.12 recordings (../shared/research/fs-captures).

Each test runs the commands of one captured scenario against the simulator (same
origination uuids, same dial strings; the simulated far end is set up to do what the
captured far end did), with a second connection subscribed to ``event plain ALL``, and
compares, for the scenario's own channel:

* the order of events (CHANNEL_STATE / CHANNEL_CALLSTATE / EXECUTE labelled with their state
  or application), exactly;
* for each pair of events, the header NAMES in order (duplicates kept, e.g. the two
  Hangup-Cause of CHANNEL_HANGUP_COMPLETE), minus the exclusions below.

Exclusions (``EXCLUDED``), each a far-end property the simulator cannot have:

* ``variable_sip_user_agent``, ``variable_sip_allow``: the User-Agent and Allow headers of the
  far end's responses; the midcall_* far end is FreeSWITCH itself (sends them), the
  sip_originate_* far end is SIPp (does not).  The simulated far end does not send them.
* ``variable_sip_subject``: the Subject header SIPp's test INVITE carried.

Values are not compared here (timestamps, ports, tags differ by nature); the call tests
check the values that matter (causes, billsec, …).  Where a capture waited seconds (a 3 s
tone, originate_timeout=5), the command uses a shorter one: header names are unchanged.
"""

from __future__ import annotations

import json
import re
from difflib import SequenceMatcher

import pytest

from gateway.simulator import Outcome, Simulator
from sim_support import CAPTURES, RawClient, capture_control, capture_events, channel_events, compare_headers

pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"captures not found at {CAPTURES}")

EXCLUDED = frozenset({"variable_sip_user_agent", "variable_sip_allow", "variable_sip_subject"})


def excluded(name: str) -> bool:
    return name in EXCLUDED


def originate_command(scenario: str) -> str:
    for item in capture_control(scenario):
        if "sent" in item and "originate" in item["sent"]:
            return item["sent"].strip()
    raise AssertionError(f"no originate in {scenario}")


def origination_uuid(command: str) -> str:
    return re.search(r"origination_uuid=([0-9a-f-]+)", command).group(1)


class Run:
    def __init__(self, outcomes=None, routes=None):
        self.sim = Simulator(port=0, answer_delay=0.05, heartbeat_interval=0, hostname="vm")
        for number, outcome in (outcomes or {}).items():
            self.sim.set_outcome(number, outcome)
        for (context, dest), apps in (routes or {}).items():
            self.sim.add_route(context, dest, apps)
        self.sim.start()
        self.events = RawClient(self.sim.port)
        self.events.auth()
        assert self.events.command("event plain ALL").reply_text == "+OK event listener enabled plain"
        self.ctl = RawClient(self.sim.port)
        self.ctl.auth()

    def cmd(self, line: str):
        return self.ctl.command(line)

    def api(self, line: str) -> str:
        return self.ctl.api(line)

    def wait(self, name: str, uuid: str, count: int = 1):
        return self.events.wait_event(name, uuid, count=count, timeout=10)

    def close(self):
        self.events.close()
        self.ctl.close()
        self.sim.stop()


@pytest.fixture
def run():
    runs = []

    def make(**kwargs):
        r = Run(**kwargs)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.close()


def assert_same_as_capture(scenario: str, r: Run, uuid: str, capture_uuid: str | None = None):
    r.wait("CHANNEL_DESTROY", uuid)
    r.events.wait_event("CHANNEL_STATE", uuid, Channel_State="CS_DESTROY")
    expected = channel_events(capture_events(scenario), capture_uuid or uuid)
    got = channel_events(r.events.events, uuid)
    want_order, got_order = [e.label() for e in expected], [e.label() for e in got]
    assert got_order == want_order, "event order differs:\n" + "\n".join(
        f"{tag}: capture {want_order[i1:i2]} simulator {got_order[j1:j2]}"
        for tag, i1, i2, j1, j2 in SequenceMatcher(a=want_order, b=got_order).get_opcodes() if tag != "equal")
    problems = []
    for want, have in zip(expected, got):
        problems += compare_headers(want, have, excluded)
    assert not problems, "\n".join(problems)


# -- sofia outbound: refusals and timeouts -------------------------------------------------------

@pytest.mark.parametrize("scenario, outcome", [
    ("sip_originate_busy_486", Outcome(final=486, provisional=None)),
    ("sip_originate_decline_603", Outcome(final=603, provisional=None)),
    ("sip_originate_notfound_404", Outcome(final=404, provisional=None)),
    ("sip_originate_unreachable_udp", Outcome(final=503, provisional=None, local=True, delay=0)),
    ("sip_originate_no_response_udp", Outcome(final=408, provisional=None, local=True, delay=0.05)),
])
def test_refused_originate(run, scenario, outcome):
    command = originate_command(scenario)
    uuid = origination_uuid(command)
    r = run(outcomes={"1234": outcome})
    assert r.cmd(command).reply_text.startswith("+OK Job-UUID: ")
    job = r.events.wait_event("BACKGROUND_JOB")
    causes = {486: "USER_BUSY", 603: "CALL_REJECTED", 404: "UNALLOCATED_NUMBER", 503: "NORMAL_TEMPORARY_FAILURE",
              408: "RECOVERY_ON_TIMER_EXPIRE"}
    assert job.body == f"-ERR {causes[outcome.final]}\n"
    assert_same_as_capture(scenario, r, uuid)
    captured_job = next(e for e in capture_events(scenario) if e.name == "BACKGROUND_JOB")
    assert compare_headers(captured_job, job, excluded) == []


def test_refused_api_originate(run):
    scenario = "sip_originate_busy_486_api"
    command = originate_command(scenario)
    uuid = origination_uuid(command)
    r = run(outcomes={"1234": Outcome(final=486, provisional=None)})
    assert r.cmd(command).text == "-ERR USER_BUSY\n"
    assert_same_as_capture(scenario, r, uuid)


def test_no_answer_timeout(run):
    scenario = "sip_originate_noanswer_timeout5"
    command = originate_command(scenario).replace("originate_timeout=5", "originate_timeout=1")
    uuid = origination_uuid(command)
    r = run(outcomes={"1234": Outcome(final=None, provisional=180)})
    r.cmd(command)
    assert r.events.wait_event("BACKGROUND_JOB", timeout=5).body == "-ERR NO_ANSWER\n"
    assert_same_as_capture(scenario, r, uuid)


# -- sofia outbound: early media --------------------------------------------------------------------

def test_early_media_returns_on_183(run):
    scenario = "sip_originate_183_then_200_early_media"
    command = originate_command(scenario)
    uuid = origination_uuid(command)
    r = run(outcomes={"1234": Outcome(final=200, provisional=183, delay=0.2)})
    r.cmd(command)
    job = r.events.wait_event("BACKGROUND_JOB")
    assert job.body == f"+OK {uuid}\n"
    park = r.wait("CHANNEL_PARK", uuid)
    assert (park.get("Answer-State"), park.get("Channel-Call-State")) == ("early", "EARLY")
    r.wait("CHANNEL_ANSWER", uuid)
    r.api(f"uuid_kill {uuid}")
    assert_same_as_capture(scenario, r, uuid)


def test_ignore_early_media_returns_on_200(run):
    scenario = "sip_originate_183_then_200_ignore_early_media"
    command = originate_command(scenario)
    uuid = origination_uuid(command)
    r = run(outcomes={"1234": Outcome(final=200, provisional=183, delay=0.2)})
    r.cmd(command)
    r.wait("CHANNEL_PARK", uuid)
    names = [e.name for e in r.events.events]
    assert names.index("CHANNEL_ANSWER") < names.index("BACKGROUND_JOB")
    r.api(f"uuid_kill {uuid}")
    assert_same_as_capture(scenario, r, uuid)


# -- mid-call commands on an answered sofia leg (far end answers with a plain 200) ---------------------

def midcall(run, scenario, steps, routes=None):
    command = originate_command(scenario)
    uuid = origination_uuid(command)
    r = run(outcomes={"9196": Outcome(final=200, provisional=None)}, routes=routes)
    assert r.cmd(command).text == f"+OK {uuid}\n"
    r.wait("CHANNEL_PARK", uuid)
    steps(r, uuid)
    assert r.api(f"uuid_kill {uuid}") == "+OK\n"
    assert_same_as_capture(scenario, r, uuid)
    return r, uuid


def test_midcall_setvar_getvar(run):
    def steps(r, uuid):
        for item in capture_control("midcall_setvar_getvar"):
            sent = item.get("sent", "")
            if sent.startswith("api uuid_") and "uuid_kill" not in sent and "uuid_exists" not in sent:
                r.cmd(sent.strip())
    midcall(run, "midcall_setvar_getvar", steps)


def test_midcall_broadcast_tone(run):
    def steps(r, uuid):
        assert r.api(f"uuid_broadcast {uuid} tone_stream://%(100,100,440);loops=1 aleg") == "+OK Message sent\n"
        r.wait("PRIVATE_COMMAND", uuid)
        stop = r.events.wait_event("PLAYBACK_STOP", uuid)
        assert stop.get("Playback-Status") == "done"
    r, uuid = midcall(run, "midcall_broadcast_tone", steps)
    complete = [e for e in channel_events(r.events.events, uuid) if e.name == "CHANNEL_EXECUTE_COMPLETE"]
    assert [(e.get("Application"), e.get("Application-Response")) for e in complete] == [
        ("playback", "FILE PLAYED"), ("park", "FILE PLAYED")]


def test_midcall_break_long_playback(run):
    def steps(r, uuid):
        r.api(f"uuid_broadcast {uuid} tone_stream://%(1000,0,440);loops=30 aleg")
        r.wait("PLAYBACK_START", uuid)
        assert r.api(f"uuid_break {uuid} all") == "+OK\n"
        assert r.wait("PLAYBACK_STOP", uuid).get("Playback-Status") == "break"
        r.wait("PRIVATE_COMMAND", uuid)
        assert r.api(f"uuid_break {uuid}") == "+OK\n"
    midcall(run, "midcall_break_long_playback", steps)


def test_midcall_record_start_stop(run, tmp_path):
    def steps(r, uuid):
        path = f"/tmp/rec-{uuid}.wav"
        assert r.api(f"uuid_record {uuid} start {path}") == "+OK Success\n"
        r.api(f"uuid_broadcast {uuid} tone_stream://%(100,0,440);loops=2 aleg")
        r.wait("PRIVATE_COMMAND", uuid)
        assert r.api(f"uuid_record {uuid} stop {path}") == "+OK Success\n"
        assert r.api(f"uuid_record {uuid} stop {path}") == "-ERR Cannot stop record session!\n"
        stop = r.wait("RECORD_STOP", uuid)
        assert stop.get("Record-Completion-Cause") == "success-maxtime"
    midcall(run, "midcall_record_start_stop", steps)


def test_midcall_recv_dtmf(run):
    def steps(r, uuid):
        assert r.api(f"uuid_recv_dtmf {uuid} 123") == f"+OK {uuid} received DTMF 123.\n"
        r.wait("DTMF", uuid, count=3)
        assert r.api(f"uuid_send_dtmf {uuid} 45") == f"+OK {uuid} sent DTMF 45.\n"
    r, uuid = midcall(run, "midcall_recv_dtmf", steps)
    dtmf = [e for e in r.events.events if e.name == "DTMF"]
    assert [(e.get("DTMF-Digit"), e.get("DTMF-Duration"), e.get("DTMF-Source")) for e in dtmf] == [
        ("1", "2000", "APP"), ("2", "2000", "APP"), ("3", "2000", "APP")]


def test_midcall_transfer(run):
    def steps(r, uuid):
        assert r.api(f"uuid_transfer {uuid} 9196 XML public") == "+OK\n"
        r.wait("CHANNEL_EXECUTE", uuid, count=5)

    routes = {("public", "9196"): [("answer", ""), ("echo", "")]}
    r, uuid = midcall(run, "midcall_transfer_to_9196", steps, routes=routes)
    unpark = r.events.wait_event("CHANNEL_UNPARK", uuid)
    assert unpark.get("Caller-Destination-Number") == "9196"
    assert unpark.get("Caller-Context") == "public"
    assert re.fullmatch(r"\d+:[0-9a-f-]{36}:bl_xfer:9196/public/XML", unpark.get("variable_transfer_history"))


# -- loopback ------------------------------------------------------------------------------------

def test_loopback_api_originate_park_kill(run):
    uuid = "5c3eb351-e4ce-4022-9475-8a53243094e1"
    r = run(routes={("default", "9664"): [("answer", ""), ("playback", "local_stream://moh")]})
    reply = r.cmd("api originate {origination_uuid=%s,origination_caller_id_number=5551000,"
                  "origination_caller_id_name=gateway}loopback/9664/default &park()" % uuid)
    assert reply.text == f"+OK {uuid}\n"
    r.wait("CHANNEL_PARK", uuid)
    assert r.api(f"uuid_kill {uuid} NORMAL_CLEARING") == "+OK\n"
    assert_same_as_capture("loopback_api_originate_park_kill", r, uuid)


def test_loopback_bgapi_farend_hangup(run):
    uuid = "1fd5ddf9-068e-4b37-a01a-c36bc563d751"
    r = run(routes={("public", "9199"): [("answer", ""), ("playback", "tone_stream://%(200,0,440)"), ("hangup", "")]})
    r.cmd("bgapi originate {origination_uuid=%s,origination_caller_id_number=5551000,"
          "origination_caller_id_name=gateway}loopback/9199/public &park()" % uuid)
    assert r.events.wait_event("BACKGROUND_JOB").body == f"+OK {uuid}\n"
    assert_same_as_capture("loopback_bgapi_farend_hangup", r, uuid)


# -- inbound -------------------------------------------------------------------------------------

def test_inbound_park_unanswered_then_answer(run):
    r = run()
    uuid = r.sim.inject_inbound("9201", "5551000", "gateway")
    park = r.wait("CHANNEL_PARK", uuid)
    assert (park.get("Answer-State"), park.get("Channel-Call-State")) == ("ringing", "RINGING")
    assert park.get("Channel-Name") == "sofia/external/5551000@127.0.0.1:5091"
    assert park.get("Caller-Destination-Number") == "9201"
    assert park.get("Caller-Context") == "public"
    assert r.api(f"uuid_answer {uuid}") == "+OK\n"
    assert r.api(f"uuid_answer {uuid}") == "+OK\n"
    assert r.api(f"uuid_kill {uuid}") == "+OK\n"
    assert_same_as_capture("sip_inbound_9201_park_unanswered_answer_kill", r, uuid,
                           capture_uuid="acdb87db-1b86-471d-8c1a-cbf10132ae8b")


def test_uuid_dump_json_has_the_captured_headers(run):
    """``uuid_dump <uuid> json`` of the parked, unanswered inbound call: the same header names
    in the same order as the real one (the reconciliation reads its caller-profile times)."""
    (captured,) = [item["body"] for item in capture_control("sip_inbound_9201_park_unanswered_answer_kill")
                   if item.get("body", "").startswith('{"Event-Name":"CHANNEL_DATA"')]
    r = run()
    uuid = r.sim.inject_inbound("9201", "5551000", "gateway")
    r.wait("CHANNEL_PARK", uuid)
    want = [name for name in json.loads(captured) if not excluded(name)]
    got = json.loads(r.api(f"uuid_dump {uuid} json"))
    assert [name for name in got if not excluded(name)] == want
    assert (got["Caller-Channel-Answered-Time"], got["Channel-Call-State"]) == ("0", "RINGING")
    r.api(f"uuid_answer {uuid}")
    answered = json.loads(r.api(f"uuid_dump {uuid} json"))
    assert int(answered["Caller-Channel-Answered-Time"]) == r.sim.channels[uuid].profile.times.answered > 0


def test_inbound_answer_then_park(run):
    r = run(routes={("public", "9200"): [("answer", ""), ("park", "")]})
    uuid = r.sim.inject_inbound("9200", "5551000", "gateway")
    r.wait("CHANNEL_PARK", uuid)
    r.api(f"uuid_kill {uuid}")
    assert_same_as_capture("sip_inbound_9200_answer_park_kill", r, uuid,
                           capture_uuid="dc777eaf-79b4-489d-802b-db0fbbaddda2")


# -- events without a channel --------------------------------------------------------------------

def test_api_and_heartbeat_events_have_the_captured_headers(run):
    r = run()
    r.sim.fire_heartbeat()
    assert r.api("uuid_exists 00000000-0000-0000-0000-000000000000") == "false"
    heartbeat = r.events.wait_event("HEARTBEAT")
    api = r.events.wait_event("API")
    captured = capture_events("midcall_record_start_stop")
    for mine in (heartbeat, api):
        theirs = next(e for e in captured + capture_events("esl_edge_replies") if e.name == mine.name)
        assert compare_headers(theirs, mine, excluded) == []
    assert r.events.wait_event("RE_SCHEDULE").get("Task-Desc") == "heartbeat"
