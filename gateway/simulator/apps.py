"""Dialplan applications (mod_dptools), run by a channel's session greenlet.

Each application is ``fn(session, arg)``; ``Session.execute`` fires CHANNEL_EXECUTE /
CHANNEL_EXECUTE_COMPLETE around it, and the application sets
``current_application_response`` when FreeSWITCH's does (playback: ``FILE PLAYED``,
``PLAYBACK ERROR``).  Argument syntax is mod_dptools' (research/freeswitch.md §3).
"""

from __future__ import annotations

import re
import time

from .causes import str2cause
from .originate import split_args

APPS = {}


def app(name):
    def register(fn):
        APPS[name] = fn
        return fn
    return register


@app("answer")
def answer(s, arg):
    s.answer()


@app("pre_answer")
def pre_answer(s, arg):
    s.pre_answer()


@app("ring_ready")
def ring_ready(s, arg):
    s.channel.mark_ring_ready()


@app("park")
def park(s, arg):
    s.park(app=True)


@app("hangup")
def hangup(s, arg):
    s.hangup(str2cause(arg) if arg else "NORMAL_CLEARING")


@app("set")
def set_(s, arg):
    name, sep, value = arg.partition("=")
    if name:
        s.channel.set_var(name.strip(), value if sep else None)


@app("unset")
def unset(s, arg):
    s.channel.set_var(arg.strip(), None)


@app("multiset")
def multiset(s, arg):
    for item in split_args(arg):
        set_(s, item)


@app("export")
def export(s, arg):
    name, sep, value = arg.partition("=")
    name = name.strip()
    if name.startswith("nolocal:"):
        name = name[len("nolocal:"):]
    else:
        s.channel.set_var(name, value if sep else None)
    exported = [v for v in (s.channel.get_var("export_vars") or "").split(",") if v]
    if name not in exported:
        exported.append(name)
    s.channel.set_var("export_vars", ",".join(exported))


@app("log")
def log(s, arg):
    pass


@app("info")
def info(s, arg):
    pass


@app("sleep")
def sleep(s, arg):
    """``switch_ivr_sleep``: queued messages still run meanwhile."""
    try:
        ms = int(arg.strip() or "0")
    except ValueError:
        ms = 0
    deadline = time.monotonic() + ms / 1000.0
    while s.wait(max(0.0, deadline - time.monotonic()), messages=True) == "message":
        s.process_one()


@app("echo")
def echo(s, arg):
    """Until hangup, transfer or break; queued messages run meanwhile."""
    while True:
        why = s.wait(dtmf=True, messages=True)
        if why == "message":
            s.process_one()
            continue
        if why == "dtmf":
            s.dtmf_queue.clear()
            continue
        if why == "break":
            s.break_requested = False
        return


def _play_items(s, arg):
    if arg.startswith("file_string://"):
        return [p for p in arg[len("file_string://"):].split("!") if p]
    return [arg]


@app("playback")
def playback(s, arg):
    result = "done"
    for item in _play_items(s, arg):
        result = s.play(item)
        if result != "done":
            break
    s.channel.set_var("current_application_response", "PLAYBACK ERROR" if result == "hangup" else "FILE PLAYED")


@app("endless_playback")
def endless_playback(s, arg):
    while s.play(arg) == "done":
        pass
    s.channel.set_var("current_application_response", "FILE PLAYED")


@app("speak")
def speak(s, arg):
    """``speak <engine>|<voice>|<text>``: what was spoken is kept in ``channel.spoken``.

    mod_dptools ``speak_function`` splits the (expanded) argument on ``|`` into at most
    three, the text being the rest unsplit; ``switch_core_speech_feed_tts`` skips leading
    spaces and takes a leading ``{name=value,…}`` as TTS parameters, not as words."""
    parts = arg.split("|", 2)
    text = (parts[2] if len(parts) == 3 else parts[-1]).lstrip(" ")
    if text.startswith("{"):
        end = _end_paren(text)
        text = text[end + 1:] if end is not None else ""
    s.channel.spoken.append(text)
    seconds = s.sim.speak_seconds(text)
    why = s.wait(seconds)
    if why == "break":
        s.break_requested = False


def _end_paren(text: str) -> int | None:
    """``switch_find_end_paren`` for ``{``/``}``: the index of the brace closing the first."""
    depth = 0
    for index, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


@app("say")
def say(s, arg):
    """``say <module>[:<lang>] <type> <method> [<gender>] <text>``."""
    words = arg.split(" ")
    text = words[-1] if words else ""
    s.channel.spoken.append(f"say:{arg}")
    why = s.wait(s.sim.speak_seconds(text))
    if why == "break":
        s.break_requested = False


def _collect(s, min_digits, max_digits, timeout, digit_timeout, terminators, prompt):
    """``switch_ivr_read``: play the prompt (DTMF cuts it), then collect digits.
    Returns (digits, terminator, aborted)."""
    digits = ""
    if prompt:
        why = s.play(prompt)
        if why == "hangup" or s.reason():
            return digits, "", True
    wait_for = timeout
    while len(digits) < max_digits:
        if s.dtmf_queue:
            digit = s.dtmf_queue.popleft()
            if digit in terminators:
                return digits, digit, False
            digits += digit
            wait_for = digit_timeout
            continue
        why = s.wait(wait_for, dtmf=True)
        if why == "dtmf":
            continue
        if why == "timeout":
            break
        if why == "break":
            s.break_requested = False
            break
        return digits, "", True
    return digits, "", False


@app("play_and_get_digits")
def play_and_get_digits(s, arg):
    """``<min> <max> <tries> <timeout_ms> <terminators> <file> <invalid_file> <var>
    <regexp> [<digit_timeout_ms>] ['<failure_ext> [dp [ctx]]']``."""
    argv = split_args(arg)
    if len(argv) < 4:
        return

    def get(i, default=""):
        return argv[i] if len(argv) > i and argv[i] != "undef" else default

    min_digits, max_digits = int(get(0, "1") or 1), int(get(1, "1") or 1)
    tries = max(1, int(get(2, "1") or 1))
    timeout = max(1000, int(get(3, "1000") or 1000)) / 1000.0
    terminators = get(4) or "#"
    if terminators == "none":
        terminators = ""
    prompt, invalid, var = get(5), get(6), get(7) or "pagd_input"
    regexp = get(8)
    digit_timeout = int(get(9)) / 1000.0 if get(9) else timeout
    failure = get(10)
    ch = s.channel
    for _ in range(tries):
        digits, term, aborted = _collect(s, min_digits, max_digits, timeout, digit_timeout, terminators, prompt)
        if aborted:
            return
        if term:
            ch.set_var("read_terminator_used", term)
        if len(digits) >= min_digits and (not regexp or re.search(regexp, digits)):
            ch.set_var(var, digits)
            ch.set_var("read_result", "success")
            return
        if digits:
            ch.set_var(f"{var}_invalid", digits)
        if invalid:
            if s.play(invalid) == "hangup":
                return
    ch.set_var(var, None)
    ch.set_var("read_result", "failure")
    if failure:
        parts = split_args(failure)
        s.request_transfer(parts[0], parts[1] if len(parts) > 1 else "XML",
                           parts[2] if len(parts) > 2 else "default")


@app("read")
def read(s, arg):
    """``read <min> <max> <file> <var> <timeout_ms> <terminators> [<digit_timeout>]``."""
    argv = split_args(arg)
    if len(argv) < 4:
        return
    min_digits, max_digits = int(argv[0]), int(argv[1])
    prompt, var = argv[2], argv[3]
    timeout = max(1000, int(argv[4]) if len(argv) > 4 else 5000) / 1000.0
    terminators = argv[5] if len(argv) > 5 else "#"
    digit_timeout = int(argv[6]) / 1000.0 if len(argv) > 6 else timeout
    digits, term, aborted = _collect(s, min_digits, max_digits, timeout, digit_timeout, terminators, prompt)
    if aborted:
        return
    s.channel.set_var(var, digits)
    s.channel.set_var("read_result", "success" if len(digits) >= min_digits else "timeout")


@app("transfer")
def transfer(s, arg):
    argv = split_args(arg)
    if not argv:
        return
    s.request_transfer(argv[0], argv[1] if len(argv) > 1 else "XML", argv[2] if len(argv) > 2 else "default")


@app("record_session")
def record_session(s, arg):
    argv = split_args(arg)
    if not argv:
        return
    limit = None
    if len(argv) > 1 and argv[1].lstrip("+").isdigit():
        limit = int(argv[1].lstrip("+"))
    s.start_record(argv[0], limit)


@app("stop_record_session")
def stop_record_session(s, arg):
    s.stop_record(arg.strip() or None)


@app("bridge")
def bridge(s, arg):
    """A simple bridge: originate the B leg, wait for its answer, stay bridged until one
    side hangs up."""
    from .originate import bridge_leg

    bridge_leg(s, arg)


@app("socket")
def socket_app(s, arg):
    # Outbound socket mode is not simulated; behave like an unreachable socket server.
    s.wait(0)
