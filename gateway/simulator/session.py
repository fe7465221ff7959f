"""The life of one channel after it exists: its "session thread".

A greenlet per channel runs what FreeSWITCH's session thread runs: the applications of the
dialplan (or the originate's ``&app``), the park loop that executes queued ``sendmsg`` /
``uuid_broadcast`` messages, re-routing after ``uuid_transfer``, and the hangup state
machine.  Other greenlets (API commands, the simulated far end) only change state and
``signal()``; the session greenlet notices at its next wait.

Event orders follow the captures:

* hangup while parked: CHANNEL_HANGUP (in the caller) -> CHANNEL_UNPARK ->
  CHANNEL_EXECUTE_COMPLETE(park) -> CHANNEL_STATE(CS_HANGUP) -> CHANNEL_CALLSTATE(HANGUP) ->
  CHANNEL_STATE(CS_REPORTING) -> CHANNEL_HANGUP_COMPLETE -> CHANNEL_DESTROY ->
  CHANNEL_STATE(CS_DESTROY)  (loopback_api_originate_park_kill, midcall_*);
* a queued execute inside park: CHANNEL_EXECUTE -> … -> CHANNEL_EXECUTE_COMPLETE ->
  PRIVATE_COMMAND, the park goes on with no new CHANNEL_PARK (midcall_broadcast_tone);
* uuid_transfer of a parked call: CHANNEL_UNPARK -> CHANNEL_EXECUTE_COMPLETE(park) ->
  CHANNEL_STATE(CS_ROUTING) -> CHANNEL_STATE(CS_EXECUTE) -> the new extension
  (midcall_transfer_to_9196).

Playback timing (research/downlink.md §2) runs on a nominal clock (``Session.clock``), not
on when this greenlet happens to wake: a blocking wait that timed out ends at its deadline,
one that a queued message ended ends when that message arrived (``_queue_message`` stamps
it).  A playback starts on the first frame boundary at or after both the clock and, for a
queued message, its arrival, so files queued ahead play back to back with no gap, and a
long chain does not drift.  A message with lead frames (``uuid_broadcast``: 5) first lets
that many frames go by, and its PLAYBACK_START comes ``BROADCAST_START_EVENT_DELAY`` after
the command.  What a playback plays goes into ``channel.heard`` (``playout.py``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
import uuid as uuidlib
from collections import deque

import gevent
from gevent.event import Event as GEvent

from . import endpoints, logs, media
from .causes import q850, refusal_response, str2cause
from .channel import Channel, Codec
from .core import atoi, date_local, now_us
from .heard import FRAME

logger = logging.getLogger(__name__)

PCMU = Codec("PCMU", 8000, 64000)
L16 = Codec("L16", 8000, 128000)
#: A real switch's PLAYBACK_START came ~200 ms after ``uuid_broadcast`` (downlink.md §2).
BROADCAST_START_EVENT_DELAY = 0.2


class Session:
    def __init__(self, sim, channel: Channel, dialog: endpoints.SipDialog | None = None) -> None:
        self.sim = sim
        self.channel = channel
        self.dialog = dialog
        channel.session = self
        self.messages: deque[dict] = deque()
        self.dtmf_queue: deque[str] = deque()
        self.wake = GEvent()
        self.break_requested = False
        self.park_requested = False
        self.transfer_target: tuple[str, str, str] | None = None
        self.greenlet: gevent.Greenlet | None = None
        self.remote_hangup = False
        self.partner: Session | None = None      # loopback other leg
        self.bridged: Session | None = None
        self.bridge_role: str | None = None
        self.early_accepted = False
        self.originate_wakeup: GEvent | None = None
        self.recording: dict | None = None
        self.disposition_on_hangup: str | None = None
        self.finished = False
        self.killed = False
        self.destroyed = GEvent()
        self.timers: list[gevent.Greenlet] = []
        self.caller_audio = b""
        self.in_app: str | None = None
        # switch_core_session_stack_count: 1 while queued messages run (switch_ivr_parse_all_events)
        self.depth = 0
        self.clock = 0.0  # nominal time the session has reached (module docstring)
        self.message: dict | None = None  # the queued message being executed
        self.break_at = 0.0  # when uuid_break asked for the current playback to stop
        self.parked = False
        self.park_media_read = False  # this park read send_silence_when_idle already

    # -- signalling -----------------------------------------------------------------------
    def signal(self) -> None:
        self.wake.set()

    def reason(self, messages: bool = False, dtmf: bool = False) -> str | None:
        if self.channel.hangup_cause:
            return "hangup"
        if self.transfer_target:
            return "transfer"
        if self.park_requested:
            return "park"
        if self.break_requested:
            return "break"
        if messages and self.messages:
            return "message"
        if dtmf and self.dtmf_queue:
            return "dtmf"
        return None

    def wait(self, timeout: float | None = None, *, deadline: float | None = None, messages: bool = False,
             dtmf: bool = False, until=None) -> str:
        """Block the session until something happens; 'timeout' when nothing did by
        ``deadline`` (``time.monotonic()``; or ``timeout`` seconds from now), 'until' when
        ``until()`` became true.  Advances ``clock``."""
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        while True:
            self.wake.clear()
            why = self.reason(messages, dtmf)
            if why is None and until is not None and until():
                why = "until"
            if why is None and deadline is not None and time.monotonic() >= deadline:
                why = "timeout"
            if why:
                if why == "timeout":
                    self.clock = max(self.clock, deadline)
                elif why == "message":
                    self.clock = max(self.clock, self.messages[0]["arrived"])
                else:
                    self.clock = max(self.clock, time.monotonic())
                return why
            self.wake.wait(None if deadline is None else deadline - time.monotonic())

    # -- the session greenlet ---------------------------------------------------------------
    def start(self, apps: list[tuple[str, str]] | None, *, route: tuple[str, str, str] | None = None,
              answer_first: bool = False) -> None:
        self.greenlet = gevent.spawn(self._run, apps, route, answer_first)

    def _run(self, apps, route, answer_first=False) -> None:
        ch = self.channel
        try:
            if route is not None and apps is None:
                ch.set_running_state("CS_ROUTING")
                apps = self.sim.router.route(ch, *route)
                if apps is None:
                    self.hangup("NO_ROUTE_DESTINATION")
                elif answer_first and not any(name in ("answer", "pre_answer") for name, _ in apps):
                    at = 0
                    while at < len(apps) and apps[at][0] in ("set", "export", "unset", "multiset", "log"):
                        at += 1
                    apps = apps[:at] + [("answer", "")] + apps[at:]
            if not ch.hungup:
                ch.set_running_state("CS_EXECUTE")
                ch.set_var("call_uuid", ch.uuid)
            while apps is not None and not ch.hungup:
                for app, arg in apps:
                    self.process_messages()
                    if ch.hungup or self.transfer_target or self.park_requested:
                        break
                    self.execute(app, arg)
                apps = None
                if ch.hungup:
                    break
                if self.transfer_target:
                    dest, dialplan, context = self.transfer_target
                    self.transfer_target = None
                    ch.set_running_state("CS_ROUTING", 2)
                    apps = self.sim.router.route(ch, dest, dialplan, context)
                    if apps is None:
                        self.hangup("NO_ROUTE_DESTINATION")
                        break
                    ch.set_running_state("CS_EXECUTE")
                    ch.set_var("call_uuid", ch.uuid)
                    continue
                if self.park_requested:
                    self.park_requested = False
                    ch.set_running_state("CS_PARK")
                    self.park()
                    apps = []
                    continue
                self.process_messages()
                if not ch.hungup and not self.transfer_target and not self.park_requested:
                    self.hangup("NORMAL_CLEARING")
            self.finish()
            self.destroy()
        except gevent.GreenletExit:
            raise
        except Exception:  # pragma: no cover - a bug must not leave a zombie channel
            logger.exception("session %s crashed", ch.uuid)
            if not ch.hungup:
                self.hangup("CRASH")
            self.finish()
            self.destroy()

    # -- applications ---------------------------------------------------------------------
    def execute(self, app: str, arg: str = "", app_uuid: str | None = None, app_uuid_name: str | None = None) -> None:
        from .apps import APPS

        fn = APPS.get(app)
        ch = self.channel
        if fn is None:
            logger.warning("%s: invalid application %s", ch.uuid, app)
            return
        app_uuid = app_uuid or str(uuidlib.uuid4())
        arg = self.sim.router.expand(ch, arg)
        ch.set_var("current_application", app)
        ch.set_var("current_application_data", arg)
        ch.set_var("current_application_response", None)
        app_headers = [("Application", app), ("Application-Data", arg)]
        tail = [("Application-UUID", app_uuid), ("Application-UUID-Name", app_uuid_name or "")]
        ch.current_app, ch.current_app_data = app, arg
        ch.last_app = (app, arg)
        ch.applications.append((app, arg))
        self.sim.log(logs.execute_line(self.depth, ch.name, app, arg, ch.uuid))
        ch.fire("CHANNEL_EXECUTE", post=app_headers + tail)
        ch.set_var("current_application", app)
        previous, self.in_app = self.in_app, app
        try:
            fn(self, arg)
        finally:
            self.in_app = previous
        response = ch.get_var("current_application_response") or "_none_"
        ch.fire("CHANNEL_EXECUTE_COMPLETE", post=app_headers + [("Application-Response", response)] + tail)

    def process_messages(self) -> None:
        while self.messages and not self.channel.hungup:
            self.process_one()

    def process_one(self) -> None:
        self.depth += 1
        try:
            self._process_one()
        finally:
            self.depth -= 1

    def _process_one(self) -> None:
        msg = self.messages.popleft()
        ch = self.channel
        command = msg.get("command", "execute")
        if command == "execute":
            lead = msg.get("lead_frames", 0)
            if lead:  # switch_ivr_parse_event reads the lead frames first
                self.wait(deadline=ch.frames.next(max(self.clock, msg["arrived"])) + lead * FRAME)
            loops = msg.get("loops", 1)
            ch.set_var("current_loop", "1")
            ch.set_var("total_loops", str(loops))
            count = 0
            previous, self.message = self.message, msg
            try:
                while not ch.hungup and (loops < 0 or count < loops):
                    count += 1
                    if count > 1:
                        ch.set_var("current_loop", str(count))
                    self.execute(msg["app"], msg.get("arg", ""), msg.get("event_uuid"), msg.get("event_uuid_name"))
                    if self.transfer_target or self.park_requested:
                        break
            finally:
                self.message = previous
        elif command == "hangup":
            self.hangup(str2cause(msg.get("cause")))
        ch.fire("PRIVATE_COMMAND", prefix=msg.get("headers", ()), body=msg.get("body"), extended=False)
        ch.set_var("current_loop", None)
        ch.set_var("total_loops", None)
        hangup_after = msg.get("hangup_after")
        if hangup_after:
            self.hangup(hangup_after)

    def park(self, app: bool = False) -> None:
        """``switch_ivr_park``: CHANNEL_PARK, run queued messages, CHANNEL_UNPARK."""
        ch = self.channel
        ch.fire("CHANNEL_PARK")
        self.clock = max(self.clock, time.monotonic())
        self.parked, self.park_media_read = True, False
        self.media_ready()
        try:
            while True:
                why = self.wait(messages=True, dtmf=True)
                if why == "message":
                    self.process_one()
                    continue
                if why == "dtmf":
                    self.dtmf_queue.clear()
                    continue
                if why == "break":
                    self.break_requested = False
                    continue
                if why == "park":
                    self.park_requested = False
                    continue
                break
        finally:
            self.parked = False
            ch.output.unpark()
        ch.fire("CHANNEL_UNPARK")

    def media_ready(self) -> None:
        """The park loop reads ``send_silence_when_idle`` once, when the channel's media is
        ready: at park if it is answered or pre-answered, else when that happens while
        parked.  A non-zero value (``atoi``: ``-1`` yes, ``true`` no) makes it write silence
        frames, on which a write-replace module's audio plays (downlink.md §2)."""
        ch = self.channel
        if not self.parked or self.park_media_read or not (ch.answered or ch.profile.times.progress_media):
            return
        self.park_media_read = True
        ch.output.park(atoi(ch.get_var("send_silence_when_idle") or "") != 0, time.monotonic())

    def play(self, path: str) -> str:
        """``switch_ivr_play_file`` for one item; returns 'done', 'break', 'dtmf' or 'hangup'.

        Timing: module docstring.  What it plays is written into ``channel.heard`` at its
        start and cut where it stops early (break, DTMF, hangup).  With ``sim.play_speed``
        other than 1 the playback lasts that many times less and nothing is written into
        ``heard`` (it is a real-time record); files that are not here (played for
        ``default_play_seconds``) write nothing either."""
        ch = self.channel
        params, clean = _split_params(path)
        kind = None
        if clean.startswith("tone_stream://"):
            kind = "tone_stream"
        elif clean.startswith("local_stream://"):
            kind = "local_stream"
        head = ([("Playback-File-Type", kind)] if kind else []) + [("Playback-File-Path", clean)] + params
        seconds = media.playback_seconds(clean, self.sim.default_play_seconds)
        audio = media.play_pcm(clean, seconds) if self.sim.play_speed == 1 else None
        if audio is not None:
            audio = audio[:2 * int(round(seconds * 8000))]
        if seconds is not None:
            seconds /= self.sim.play_speed
        msg = self.message
        start = ch.frames.next(max(self.clock, time.monotonic() if msg is None else msg["arrived"]))
        if msg is not None and msg.get("lead_frames"):
            self.wait(deadline=msg["arrived"] + BROADCAST_START_EVENT_DELAY)
        ch.set_var("current_application", self.in_app or "playback")
        ch.fire("PLAYBACK_START", post=head)
        ch.played.append(clean)
        if self.sim.keep_played_audio:
            kept = media.wav_pcm(clean)
            if kept is not None:
                ch.played_audio.append(kept)
        end = math.inf if seconds is None else start + seconds
        ch.output.file_started(start, end, audio)
        self.sim._notify()
        why = self.wait(deadline=None if seconds is None else end,
                        dtmf=self.in_app in ("play_and_get_digits", "read"))
        stopped = end if why == "timeout" else self.break_at if why == "break" else time.monotonic()
        ch.output.file_stopped(stopped)
        elapsed = max(0.0, min(stopped, end) - start)
        samples = int(elapsed * 8000)
        ch.set_vars([("playback_last_offset_pos", str(samples)), ("playback_seconds", str(int(elapsed))),
                     ("playback_ms", str(int(elapsed * 1000))), ("playback_samples", str(samples))])
        status = "done"
        if why == "break":
            self.break_requested = False
            status = "break"
        elif why == "dtmf":
            status = "break"
        ch.fire("PLAYBACK_STOP", post=head + [("Playback-Status", status)])
        if why == "timeout":
            return "done"
        return why if why in ("hangup", "dtmf") else "break"

    # -- answering --------------------------------------------------------------------------
    def pre_answer(self) -> None:
        ch = self.channel
        if ch.answered or ch.profile.times.progress_media or ch.hungup:
            return
        if ch.endpoint == "sofia" and ch.direction == "inbound":
            ch.set_vars(endpoints.sofia_media(ch, self.dialog, with_ep_codec=False, with_flow=True)
                        + [("endpoint_disposition", "EARLY MEDIA")])
            ch.set_codec(PCMU)
        ch.mark_pre_answered()
        ch.set_callstate("EARLY")
        if self.partner is not None and ch.direction == "inbound":
            self.partner.far_early_media()

    def answer(self) -> None:
        """Answer an inbound leg (``answer`` app, ``uuid_answer``)."""
        ch = self.channel
        if ch.answered or ch.hungup:
            return
        if ch.endpoint == "sofia" and ch.direction == "inbound":
            if not ch.profile.times.progress_media:
                self.pre_answer()
            ch.set_var("rtp_local_sdp_str", endpoints._sdp("FreeSWITCH", self.dialog.local_ip,
                                                           self.dialog.local_media_port))
            ch.mark_answered()
            ch.set_callstate("ACTIVE")
            ch.set_vars(endpoints.sofia_in_acked(self.dialog))
            return
        if ch.endpoint == "loopback" and ch.direction == "inbound" and self.partner is not None:
            self.partner.far_answered()
            ch.mark_answered()
            ch.set_callstate("ACTIVE")
            ch.set_var("endpoint_disposition", "ANSWER")
            return
        ch.mark_answered()
        ch.set_callstate("ACTIVE")

    def far_answered(self) -> None:
        """The other side of this outbound leg answered (loopback B answered)."""
        ch = self.channel
        if ch.answered or ch.hungup:
            return
        ch.mark_answered()
        ch.set_callstate("ACTIVE")
        self.signal()
        waiter = getattr(self, "originate_wakeup", None)
        if waiter is not None:
            waiter.set()

    def far_early_media(self) -> None:
        ch = self.channel
        if ch.answered or ch.hungup:
            return
        ch.mark_pre_answered()
        ch.set_callstate("EARLY")
        waiter = getattr(self, "originate_wakeup", None)
        if waiter is not None:
            waiter.set()

    # -- transfer -----------------------------------------------------------------------------
    def request_transfer(self, dest: str, dialplan: str = "XML", context: str = "default") -> None:
        """``switch_ivr_session_transfer``: a new caller profile (index + 1, logical
        direction inbound, Transfer-Source, RDNIS), ``transfer_history`` /
        ``transfer_source``, state CS_ROUTING; the session re-routes when the running
        application returns."""
        ch = self.channel
        old = ch.profile
        now = now_us()
        dialplan = dialplan or "XML"
        context = context or "default"
        source = f"{now // 1_000_000}:{uuidlib.uuid4()}:bl_xfer:{dest}/{context}/{dialplan}"
        ch.set_var("max_forwards", ch.get_var("max_forwards") or "70")
        history = ch.get_var("transfer_history")
        ch.set_var("transfer_history", f"{history}|:{source}" if history else source)
        ch.set_var("transfer_source", source)
        new = copy.copy(old)
        new.times = copy.copy(old.times)
        new.times.profile_created = now
        new.profile_index = old.profile_index + 1
        new.logical_direction = "inbound"
        new.dialplan = dialplan
        new.context = context
        new.transfer_source = source
        new.rdnis = old.rdnis or old.destination_number
        new.destination_number = dest
        ch.profile = new
        ch.state_number = 2
        self.transfer_target = (dest, dialplan, context)
        self.signal()

    # -- DTMF -------------------------------------------------------------------------------
    def receive_dtmf(self, digits: str, *, duration: int = 2000, source: str = "APP") -> None:
        ch = self.channel
        for digit in digits:
            if ch.hungup:
                return
            ch.fire("DTMF", post=[("DTMF-Digit", digit), ("DTMF-Duration", str(duration)),
                                  ("DTMF-Source", source)])
            ch.set_var("last_dtmf_duration", str(duration // 2))
            ch.dtmf.append(digit)
            ch.digits_dialed += digit
            self.dtmf_queue.append(digit)
            self.signal()

    # -- recording ----------------------------------------------------------------------------
    def start_record(self, path: str, limit: float | None = None) -> bool:
        ch = self.channel
        if self.recording is not None or ch.hungup:
            return False
        self.recording = {"path": path, "started": time.monotonic()}
        ch.recordings.append(path)
        ch.fire("RECORD_START", post=[("Record-File-Path", path)])
        ch.fire("MEDIA_BUG_START", pre=[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", path)])
        if limit:
            self.timers.append(gevent.spawn_later(limit, self.stop_record, path))
        return True

    def stop_record(self, path: str | None = None) -> bool:
        ch = self.channel
        rec = self.recording
        if rec is None or (path not in (None, "all") and path != rec["path"]):
            return False
        self.recording = None
        stopped = time.monotonic()
        size, samples = media.write_wav(rec["path"], stopped - rec["started"],
                                        self.recorded_audio(rec["started"], stopped))
        ch.set_vars([("record_file_size", str(size)), ("record_samples", str(samples)),
                     ("record_seconds", str(samples // 8000)), ("record_ms", str(samples // 8)),
                     ("record_completion_cause", "success-maxtime")])
        ch.fire("RECORD_STOP", post=[("Record-File-Path", rec["path"]),
                                     ("Record-Completion-Cause", "success-maxtime")])
        ch.fire("MEDIA_BUG_STOP", pre=[("Media-Bug-Function", "session_record"),
                                       ("Media-Bug-Target", rec["path"])])
        return True

    def recorded_audio(self, t0: float, t1: float) -> bytes:
        """What a recording of this channel from ``t0`` to ``t1`` holds: what it reads (a
        loopback leg reads what its other leg wrote; another channel, the far end's
        ``caller_audio``) mixed with what it writes (``channel.heard``), on the real time
        axis, silence where nothing was heard."""
        writes = self.channel.heard.between(t0, t1)
        reads = self.partner.channel.heard.between(t0, t1) if self.partner is not None else self.caller_audio
        return media.mix(reads, writes)

    # -- hangup -----------------------------------------------------------------------------
    def hangup(self, cause: str = "NORMAL_CLEARING", *, remote: bool = False, pre_vars=()) -> bool:
        """``switch_channel_hangup``: CHANNEL_HANGUP now, the rest in the session greenlet."""
        ch = self.channel
        if ch.hangup_cause:
            return False
        ch.set_vars(pre_vars)
        if self.disposition_on_hangup:
            ch.set_var("endpoint_disposition", self.disposition_on_hangup)
            self.disposition_on_hangup = None
        self.remote_hangup = remote
        if remote and ch.endpoint == "sofia" and ch.answered:
            ch.set_vars(endpoints.sofia_bye_received(cause))
        ch.hangup_cause = cause
        ch.answer_state = "hangup"
        ch.state_number = 10
        ch.profile.times.hungup = now_us()
        ch.output.hangup(time.monotonic())
        ch.fire("CHANNEL_HANGUP")
        if remote and ch.endpoint == "sofia" and ch.answered:
            ch.set_var("sip_hangup_disposition", "recv_bye")
        for timer in self.timers:
            timer.kill(block=False)
        self.signal()
        waiter = getattr(self, "originate_wakeup", None)
        if waiter is not None:
            waiter.set()
        if self.partner is not None and not self.partner.channel.hungup:
            gevent.spawn(self.partner.hangup, cause, remote=True)
        if self.bridged is not None:
            self.bridged.signal()  # the bridge application decides what happens next
        return True

    def finish(self) -> None:
        """CS_HANGUP and CS_REPORTING, up to CHANNEL_HANGUP_COMPLETE."""
        if self.finished:
            return
        self.finished = True
        ch = self.channel
        ch.set_running_state("CS_HANGUP", 10)
        if self.recording is not None:
            self.stop_record()
        ch.set_callstate("HANGUP")
        ch.set_running_state("CS_REPORTING", 11)
        cause = ch.hangup_cause or "NORMAL_CLEARING"
        ch.set_vars([("hangup_cause", cause), ("hangup_cause_q850", str(q850(cause)))])
        ch.set_vars(timing_vars(ch))
        if ch.endpoint == "sofia":
            if not ch.answered and ch.direction == "outbound" and not ch.get_var("sip_hangup_disposition"):
                ch.set_vars(endpoints.sofia_cancelled())
            elif ch.answered:
                if not self.remote_hangup:
                    ch.set_var("sip_hangup_disposition", "send_bye")
                seconds = (ch.profile.times.hungup - ch.profile.times.answered) / 1e6
                ch.set_vars(endpoints.rtp_stats(seconds))
            elif ch.direction == "inbound" and not ch.get_var("sip_hangup_disposition"):
                ch.set_var("sip_hangup_disposition", "recv_cancel" if self.remote_hangup else "send_refuse")
                if not self.remote_hangup and self.dialog is not None:
                    # mod_sofia's sofia_on_hangup answers the INVITE with the cause's SIP status
                    self.dialog.refused_with = refusal_response(cause)
        elif ch.endpoint == "loopback":
            ch.set_var("is_loopback", "1")
        ch.fire("CHANNEL_HANGUP_COMPLETE", pre=[("Hangup-Cause", cause)])

    def destroy(self) -> None:
        ch = self.channel
        if ch.destroyed:
            return
        ch.state_number = 12
        ch.fire("CHANNEL_DESTROY")
        ch.set_running_state("CS_DESTROY", 12)
        ch.destroyed = True
        self.sim._channel_gone(ch)
        self.destroyed.set()

    def kill(self) -> None:
        """Vanish without events (simulator crash)."""
        self.killed = True
        if self.originate_wakeup is not None:
            self.originate_wakeup.set()
        for timer in self.timers:
            timer.kill(block=False)
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
        self.channel.destroyed = True
        self.destroyed.set()


def _split_params(path: str) -> tuple[list[tuple[str, str]], str]:
    """``{var=val,…}file``: the vars become PLAYBACK_* headers."""
    if not path.startswith("{"):
        return [], path
    end = path.find("}")
    if end < 0:
        return [], path
    params = []
    for item in path[1:end].split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            params.append((name.strip(), value))
    return params, path[end + 1:]


def timing_vars(ch: Channel) -> list[tuple[str, str]]:
    """``switch_channel_set_timestamps`` + the CDR figures (values checked against the
    CHANNEL_HANGUP_COMPLETE of every capture: seconds are differences of whole epoch
    seconds, milliseconds differences of whole milliseconds)."""
    t = ch.profile.times
    start = t.created
    end = t.hungup or now_us()
    out = [("digits_dialed", ch.digits_dialed or "none"), ("start_stamp", date_local(start)),
           ("profile_start_stamp", date_local(t.profile_created))]
    if t.answered:
        out.append(("answer_stamp", date_local(t.answered)))
    if t.progress:
        out.append(("progress_stamp", date_local(t.progress)))
    if t.progress_media:
        out.append(("progress_media_stamp", date_local(t.progress_media)))
    out.append(("end_stamp", date_local(end)))

    def ep(us: int) -> str:
        return str(us // 1_000_000)

    out += [
        ("start_epoch", ep(start)), ("start_uepoch", str(start)),
        ("profile_start_epoch", ep(t.profile_created)), ("profile_start_uepoch", str(t.profile_created)),
        ("answer_epoch", ep(t.answered)), ("answer_uepoch", str(t.answered)),
        ("bridge_epoch", ep(t.bridged)), ("bridge_uepoch", str(t.bridged)),
        ("last_hold_epoch", "0"), ("last_hold_uepoch", "0"), ("hold_accum_seconds", "0"),
        ("hold_accum_usec", "0"), ("hold_accum_ms", "0"), ("resurrect_epoch", "0"), ("resurrect_uepoch", "0"),
        ("progress_epoch", ep(t.progress)), ("progress_uepoch", str(t.progress)),
        ("progress_media_epoch", ep(t.progress_media)), ("progress_media_uepoch", str(t.progress_media)),
        ("end_epoch", ep(end)), ("end_uepoch", str(end)),
    ]
    if ch.last_app:
        out.append(("last_app", ch.last_app[0]))
        if ch.last_app[1]:
            out.append(("last_arg", ch.last_app[1]))
    p = ch.profile
    out.append(("caller_id", f'"{p.caller_id_name}" <{p.caller_id_number}>'))

    def sec(a: int, b: int) -> int:
        return a // 1_000_000 - b // 1_000_000 if a and b else 0

    def msec(a: int, b: int) -> int:
        return a // 1000 - b // 1000 if a and b else 0

    def usec(a: int, b: int) -> int:
        return a - b if a and b else 0

    answered = t.answered
    flow_end = end if answered else 0
    for unit, fn in (("sec", sec), ("msec", msec), ("usec", usec)):
        prefix = {"sec": "", "msec": "m", "usec": "u"}[unit]
        out += [
            (f"{prefix}duration" if unit != "sec" else "duration", str(fn(end, start))),
            (f"bill{unit}", str(fn(end, answered))),
            (f"progress{unit}", str(fn(t.progress, start))),
            (f"answer{unit}", str(fn(answered, start))),
            (f"wait{unit}", str(fn(t.bridged, start))),
            (f"progress_media{unit}", str(fn(t.progress_media, start))),
            (f"flow_bill{unit}", str(fn(flow_end, start))),
        ]
    return out
