"""The IO-free parts of admission control: the gateway's per-node budget and line
(``calls/admission.py``), the limits read from ``api status`` (``esl/limits.py``), and the
simulator's model of FreeSWITCH's own limits (``simulator/throttle.py``)."""

from __future__ import annotations

import json
import random

import pytest

from gateway.calls.admission import WINDOW, Admission, usable
from gateway.config import DEFAULT_ADMISSION_WAIT, Settings
from gateway.esl.limits import SwitchLimits, version_from_status
from gateway.simulator.throttle import Throttle
from sim_support import CAPTURES

SHIPPED = SwitchLimits(30, 1000)


def drain(admission: Admission, now: float) -> list[str]:
    started, given_up = admission.due(now)
    assert not given_up
    return [t.call_uuid for t in started]


# -- the limits as FreeSWITCH reports them ---------------------------------------------------------

@pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"captures not found at {CAPTURES}")
def test_limits_and_version_are_read_from_a_real_status_reply():
    replies = json.loads((CAPTURES / "gateway_commands.real.json").read_text())["replies"]
    status = next(r["body"] for r in replies if r["cmd"] == "api status")
    assert SwitchLimits.from_status(status) == SwitchLimits(30, 1000)
    assert version_from_status(status) == "1.10.12-release"
    changed = status.replace("out of max 30,", "out of max 120,").replace("1000 session(s) max", "250 session(s) max")
    assert SwitchLimits.from_status(changed) == SwitchLimits(120, 250)


@pytest.mark.parametrize("text", ["", "-ERR status Command not found!\n", "UP 0 years\n1000 session(s) max\n",
                                  "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"])
def test_a_status_reply_without_both_limits_is_refused(text):
    with pytest.raises(ValueError):
        SwitchLimits.from_status(text)


# -- the budget ------------------------------------------------------------------------------------

def test_headroom_is_a_tenth_under_each_limit_and_never_below_one():
    assert usable(29) == 26  # sessions-per-second=30: FreeSWITCH starts 29 a second
    assert usable(1000) == 900
    assert [usable(n) for n in (1, 2, 3, 10, 11)] == [1, 1, 2, 9, 9]
    admission = Admission(SHIPPED, wait=60)
    assert (admission.rate, admission.ceiling) == (26, 900)
    admission.limits = SwitchLimits(3, 2)
    assert (admission.rate, admission.ceiling) == (1, 1)


def test_a_burst_starts_in_placing_order_at_the_rate_then_waits_for_the_window():
    admission = Admission(SHIPPED, wait=60)
    for i in range(60):
        admission.enqueue(f"c{i}", now=0.0)
    assert drain(admission, 0.0) == [f"c{i}" for i in range(26)]
    assert drain(admission, 0.5) == []
    assert admission.next_due(0.5) == WINDOW
    assert drain(admission, WINDOW) == [f"c{i}" for i in range(26, 52)]
    assert drain(admission, 2 * WINDOW) == [f"c{i}" for i in range(52, 60)]
    assert len(admission) == 0 and admission.next_due(3.0) is None


def test_starts_never_exceed_what_freeswitch_takes_in_any_of_its_seconds_whatever_its_phase():
    """Calls arrive at random; the pacer runs ``due`` whenever ``next_due`` says.  Each
    start is then fed to the simulator's model of FreeSWITCH's budget, refilled on its own
    ticks at a random phase: it never refuses one."""
    rnd = random.Random(10)
    for _ in range(20):
        phase = rnd.random()
        admission = Admission(SHIPPED, wait=3600)
        switch = Throttle(30, 1000)
        arrivals = sorted(rnd.uniform(0, 20) for _ in range(600))
        now, next_tick, refused, started = 0.0, phase, 0, 0
        while arrivals or len(admission):
            due = admission.next_due(now)
            when = min(([arrivals[0]] if arrivals else []) + ([due] if due is not None else []))
            while next_tick <= when:
                switch.tick()
                next_tick += 1.0
            now = when
            while arrivals and arrivals[0] <= now:
                admission.enqueue(f"c{len(arrivals)}", arrivals.pop(0))
            for ticket in admission.due(now)[0]:
                started += 1
                refused += not switch.request(0)
                admission.release(ticket.call_uuid)
        assert started == 600 and refused == 0, phase


def test_sessions_cap_starts_until_a_call_ends():
    admission = Admission(SwitchLimits(30, 3), wait=60)  # ceiling 2
    for name in ("a", "b", "c", "d"):
        admission.enqueue(name, now=0.0)
    assert drain(admission, 0.0) == ["a", "b"]
    assert admission.next_due(5.0) == 60.0  # only the deadline can change things now
    admission.release("a")
    assert drain(admission, 5.0) == ["c"]
    admission.hold("inbound-1")  # an inbound call takes the place b's end frees
    admission.release("b")
    assert drain(admission, 6.0) == []
    admission.release("nobody")  # unknown calls are ignored
    assert admission.sessions == 2


def test_calls_still_waiting_at_their_deadline_are_given_up_in_order():
    admission = Admission(SwitchLimits(30, 2), wait=10)  # ceiling 1
    admission.enqueue("a", now=0.0)
    admission.enqueue("b", now=1.0)
    admission.enqueue("c", now=2.0)
    assert drain(admission, 0.0) == ["a"]
    assert admission.holdup(5.0).startswith("1 sessions up")
    assert admission.next_due(5.0) == 11.0
    started, given_up = admission.due(11.0)
    assert started == [] and [t.call_uuid for t in given_up] == ["b"]
    assert admission.waiting("c") and not admission.waiting("b")
    assert [t.call_uuid for t in admission.due(12.0)[1]] == ["c"]


def test_a_refused_call_goes_back_to_its_place_and_starts_pause_for_a_window():
    admission = Admission(SHIPPED, wait=60)
    for name in ("a", "b", "c", "d", "e"):
        admission.enqueue(name, now=0.0)
    assert drain(admission, 0.0) == ["a", "b", "c", "d", "e"]
    admission.enqueue("f", now=0.1)
    # the switch refused d and c; their refusals arrive in that order
    assert admission.refused("d", now=0.2).refusals == 1
    assert admission.refused("c", now=0.2) is not None
    assert admission.refused("zz", now=0.2) is None  # not a call we started
    assert admission.waiting("c") and admission.sessions == 3
    assert "refused" in admission.holdup(0.3)
    assert drain(admission, 0.3) == []
    assert admission.next_due(0.3) == 0.2 + WINDOW
    assert drain(admission, 0.2 + WINDOW) == ["c", "d", "f"]


def test_a_cancelled_call_leaves_the_line():
    admission = Admission(SwitchLimits(30, 2), wait=60)
    admission.enqueue("a", now=0.0)
    admission.enqueue("b", now=0.0)
    admission.enqueue("c", now=0.0)
    assert drain(admission, 0.0) == ["a"]
    assert admission.cancel("b").call_uuid == "b"
    assert admission.cancel("b") is None and admission.cancel("a") is None  # started: not in line
    admission.release("a")
    assert drain(admission, 1.0) == ["c"]


def test_draining_empties_the_line_in_order():
    admission = Admission(SwitchLimits(30, 2), wait=60)
    for name in ("a", "b", "c"):
        admission.enqueue(name, now=0.0)
    assert drain(admission, 0.0) == ["a"]
    assert [t.call_uuid for t in admission.drain()] == ["b", "c"]
    assert len(admission) == 0 and not admission.waiting("b") and admission.next_due(1.0) is None


def test_nothing_starts_while_the_node_is_down_but_deadlines_still_pass():
    admission = Admission(SHIPPED, wait=5)
    admission.enqueue("a", now=0.0)
    assert admission.due(1.0, may_start=False) == ([], [])
    assert admission.next_due(1.0, may_start=False) == 5.0
    assert [t.call_uuid for t in admission.due(5.0, may_start=False)[1]] == ["a"]


# -- the simulator's FreeSWITCH budget -------------------------------------------------------------

def test_freeswitch_starts_one_session_less_than_its_sessions_per_second():
    """switch_core_session_request_uuid: ``if (--runtime.sps <= 0)`` refuses."""
    throttle = Throttle(30, 1000)
    assert [throttle.request(0) for _ in range(31)] == [True] * 29 + [False, False]
    assert throttle.remaining == -1 and throttle.remaining_unsigned == 0xFFFFFFFF
    throttle.tick()
    assert throttle.last == 31 and throttle.peak == 31  # refused requests took from the budget too
    assert throttle.remaining == 30 and throttle.request(0)
    throttle.tick()
    assert (throttle.last, throttle.peak, throttle.peak_fivemin) == (1, 31, 31)


def test_freeswitch_refuses_a_session_over_max_sessions():
    throttle = Throttle(30, 2)
    assert throttle.request(0) and throttle.request(1)
    assert not throttle.request(2)
    with pytest.raises(ValueError):
        Throttle(0, 10)


# -- the setting -----------------------------------------------------------------------------------

def test_the_admission_wait_comes_from_the_environment_or_the_file(tmp_path):
    assert Settings.from_env({}).admission_wait == DEFAULT_ADMISSION_WAIT == 60
    assert Settings.from_env({"GATEWAY_ADMISSION_WAIT": "12.5"}).admission_wait == 12.5
    config = tmp_path / "gateway.toml"
    config.write_text('gateway_admission_wait = "90"\n')
    assert Settings.from_env({}, config).admission_wait == 90
    assert Settings.from_env({"GATEWAY_ADMISSION_WAIT": "5"}, config).admission_wait == 5


@pytest.mark.parametrize("value, message", [
    ("soon", "'soon' is not a number of seconds"), ("0", "out of range"), ("-3", "out of range"),
    ("nan", "out of range"), ("inf", "out of range"), ("3601", "out of range"),
])
def test_a_bad_admission_wait_is_refused_naming_the_variable(value, message):
    with pytest.raises(ValueError, match="GATEWAY_ADMISSION_WAIT") as error:
        Settings.from_env({"GATEWAY_ADMISSION_WAIT": value})
    assert message in str(error.value)
