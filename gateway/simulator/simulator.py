"""``Simulator``: the FreeSWITCH stand-in as one object (server, channels, far-end controls).

Everything runs in gevent greenlets of the calling process; tests use gevent sockets (or
greenswitch) against ``127.0.0.1:<sim.port>``.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid as uuidlib

import gevent
from gevent.event import Event as GEvent

from . import api as api_commands
from . import endpoints
from .channel import CallerProfile, Channel
from .core import FS_VERSION, Core, now_us
from .originate import Dialer
from .outcomes import Outcome, outcome_for
from .routing import Router
from .server import EslServer
from .session import Session
from .throttle import DEFAULT_MAX_SESSIONS, DEFAULT_SESSIONS_PER_SECOND, Throttle

logger = logging.getLogger(__name__)


EMULATED_MODULES = (
    "mod_event_socket", "mod_sofia", "mod_loopback", "mod_commands", "mod_dptools", "mod_dialplan_xml",
    "mod_sndfile", "mod_tone_stream", "mod_say_en", "mod_flite", "mod_audio_stream",
)


class SessionRefused(Exception):
    """An inbound call the switch refused at its session limits (``throttle.py``)."""


class Simulator:
    """A FreeSWITCH 1.10.12 stand-in speaking the Event Socket protocol.

    ``channels`` maps the uuid of every live channel to its ``Channel``; ``history`` keeps
    every channel created (the last ``history_limit`` of them, until ``reset_history()``),
    so a test can inspect a call after it ended."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8021, password: str = "ClueCon",
                 gateways=("carrier",), dialplan_dir: str | None = None, answer_delay: float = 0.1,
                 heartbeat_interval: float = 20.0, *, remote_hangup_delay: float = 1.0,
                 default_play_seconds: float = 0.5, speak_chars_per_second: float = 15.0,
                 hostname: str | None = None, local_ip: str = "127.0.0.1", write_delay: float = 0.0,
                 auth_timeout: float = 25.0, dtmf_interval: float = 0.02, history_limit: int = 10_000,
                 sessions_per_second: int = DEFAULT_SESSIONS_PER_SECOND,
                 max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.password = password
        if isinstance(gateways, dict):
            self.gateways = dict(gateways)
        else:
            self.gateways = {name: "127.0.0.1:5060" for name in gateways}
        self.answer_delay = answer_delay
        self.heartbeat_interval = heartbeat_interval
        self.remote_hangup_delay = remote_hangup_delay
        self.default_play_seconds = default_play_seconds
        self.speak_chars_per_second = speak_chars_per_second
        self.hostname = hostname or socket.gethostname()
        self.local_ip = local_ip
        self.write_delay = write_delay
        self.auth_timeout = auth_timeout
        self.dtmf_interval = dtmf_interval
        self.history_limit = history_limit
        #: switch.conf.xml's sessions-per-second and max-sessions, applied at every start
        self.sessions_per_second = sessions_per_second
        self.max_sessions = max_sessions
        self.throttle = Throttle(sessions_per_second, max_sessions)
        # The shipped event_socket.conf.xml takes its password from the global esl_password
        # (vars.xml), so a switch configured that way holds its ESL password in that global.
        self.global_vars: dict[str, str] = {"hostname": self.hostname, "local_ip_v4": local_ip,
                                            "esl_password": password}
        self.router = Router(self, dialplan_dir)
        #: what ``module_exists`` answers true for: the modules this simulator stands in for
        self.modules: set[str] = set(EMULATED_MODULES)
        if self.router.dialplan is not None:  # vars.xml's globals, as FreeSWITCH loads them
            self.global_vars.update(self.router.dialplan.dialplan.global_variables)
        self.dialer = Dialer(self)
        self.outcomes: dict[str, Outcome] = {}
        self.channels: dict[str, Channel] = {}
        self.history: dict[str, Channel] = {}
        self.gateway_calls: dict[str, int] = {}
        self.listeners: list = []
        #: Set to a bytearray to keep every byte ESL clients send (tests read the wire).
        self.received: bytearray | None = None
        #: True: each channel keeps the audio of the WAV files it played (``played_audio``).
        self.keep_played_audio = False
        #: How many times faster than real time playback runs (tests shorten long files).
        self.play_speed = 1.0
        self.core = Core(self.hostname, local_ip)
        self._server: EslServer | None = None
        self._heartbeat: gevent.Greenlet | None = None
        self._timer: gevent.Greenlet | None = None
        self._stopped = GEvent()
        self._reading_allowed = GEvent()
        self._reading_allowed.set()
        self._changed = GEvent()
        self._waiters = 0
        self._session_counter = 0
        self._peak = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Simulator":
        """Listen (returns once the socket is bound).  A restart gets a new Core-UUID and
        keeps the port of the first start."""
        if self._server is not None:
            return self
        self.core = Core(self.hostname, self.local_ip)
        self.core.observers.append(self._on_event)
        self._stopped.clear()
        port = self.port if self.port else self.requested_port
        self._server = EslServer(self, self.host, port)
        self.port = self._server.start()
        self._session_counter = 0
        self.throttle = Throttle(self.sessions_per_second, self.max_sessions)
        self._timer = gevent.spawn(self._timer_loop)
        if self.heartbeat_interval and self.heartbeat_interval > 0:
            self._heartbeat = gevent.spawn(self._heartbeat_loop)
        return self

    def stop(self) -> None:
        """Crash: close the listener and every connection with no further bytes; every
        channel vanishes without events."""
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        if self._heartbeat is not None:
            self._heartbeat.kill(block=False)
            self._heartbeat = None
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None
        for listener in list(self.listeners):
            listener.crash()
        self.listeners.clear()
        self._reading_allowed.set()
        for ch in list(self.channels.values()):
            if ch.session is not None:
                ch.session.kill()
        self.channels.clear()
        self._stopped.set()
        self._notify()

    def serve_forever(self) -> None:
        self.start()
        self._stopped.wait()

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------------------
    def set_outcome(self, number: str, outcome: Outcome) -> None:
        self.outcomes[number] = outcome

    def clear_outcomes(self) -> None:
        self.outcomes.clear()

    def outcome_for(self, number: str) -> Outcome:
        """``set_outcome`` entries first (exact, then by digits: ``+15551230000`` and
        ``15551230000`` are the same number), then the rule of ``outcomes``."""
        if number in self.outcomes:
            return self.outcomes[number]
        digits = "".join(ch for ch in number if ch.isdigit())
        for key, outcome in self.outcomes.items():
            if digits and "".join(ch for ch in key if ch.isdigit()) == digits:
                return outcome
        return outcome_for(number, remote_hangup_delay=self.remote_hangup_delay)

    def add_route(self, context: str, destination: str, apps) -> None:
        """Built-in router entry: ``[(app, arg), …]`` for ``destination`` in ``context``."""
        self.router.add(context, destination, apps)

    def set_write_delay(self, seconds: float) -> None:
        """Delay every write (slow network), on current and future connections."""
        self.write_delay = seconds
        for listener in self.listeners:
            listener.write_delay = seconds

    def pause_reading(self) -> None:
        """Stop reading from every connection (commands go unanswered) until resumed."""
        self._reading_allowed.clear()

    def resume_reading(self) -> None:
        self._reading_allowed.set()

    def set_caller_audio(self, uuid: str, pcm: bytes) -> None:
        """8 kHz mono s16le the far end "says" (what ``uuid_record`` writes)."""
        self._live(uuid).session.caller_audio = pcm

    def inject_inbound(self, did: str, caller_number: str, caller_name: str = "", answer: bool = False,
                       variables: dict | None = None, *, context: str = "public", caller_ip: str = "127.0.0.1",
                       caller_port: int = 5091) -> str:
        """An inbound SIP call to ``did`` (sofia/external): routed through the dialplan
        (context ``public``), or parked (after an answer when ``answer=True``) by the
        built-in router.  Returns the channel uuid.

        Raises ``SessionRefused`` when the switch is at its session limits: sofia answers
        that INVITE ``503 Maximum Calls In Progress`` and no channel is created (sofia.c
        ``sofia_event_callback``)."""
        if not self.request_session():
            raise SessionRefused("503 Maximum Calls In Progress")
        uuid = str(uuidlib.uuid4())
        name = f"sofia/external/{caller_number}@{caller_ip}:{caller_port}"
        now = now_us()
        profile = CallerProfile(
            direction="inbound", uuid=uuid, chan_name=name, source="mod_sofia", context=context,
            destination_number=did, caller_id_name=caller_name or caller_number, caller_id_number=caller_number,
            orig_caller_id_name=caller_name or caller_number, orig_caller_id_number=caller_number,
            network_addr=caller_ip, ani=caller_number, username=caller_number, dialplan="XML",
        )
        profile.times.created = profile.times.profile_created = now
        ch = Channel(self.core, uuid, name, "inbound", profile, "sofia")
        ch.session_id = self._next_session_id()
        dialog = endpoints.SipDialog(self.local_ip, did, caller_ip, caller_port, caller_number,
                                     caller_name or caller_number)
        self._add_channel(ch)
        session = self._session(ch, dialog)
        ch.running_state, ch.state_number = "CS_NEW", 0
        ch.profile_visible = False
        ch.fire("CHANNEL_STATE")
        ch.profile_visible = True
        ch.set_running_state("CS_INIT", 1)
        ch.state_number = 2
        ch.set_vars(endpoints.sofia_in_create(ch, dialog, did, variables))
        ch.fire("CHANNEL_CREATE")
        ch.running_state = "CS_ROUTING"
        ch.set_callstate("RINGING")
        session.start(None, route=(did, "XML", context), answer_first=answer)
        return uuid

    def far_end_hangup(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """The remote party hangs up (BYE, or CANCEL before answer)."""
        from .causes import str2cause

        self._live(uuid).session.hangup(str2cause(cause), remote=True)

    def press(self, uuid: str, digits: str) -> None:
        """The remote party presses keys (RFC 2833: DTMF events, DTMF-Source RTP)."""
        session = self._live(uuid).session
        self._queue_dtmf(session, digits, duration=800, source="RTP")

    def wait_for(self, predicate, timeout: float = 5.0):
        """Wait (gevent, no polling) until ``predicate()`` is truthy; returns its value.
        Re-checked after every event and channel change.  Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        self._waiters += 1
        try:
            while True:
                changed = self._changed
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                changed.wait(remaining)
        finally:
            self._waiters -= 1

    def wait_event(self, uuid: str, name: str, timeout: float = 5.0, count: int = 1) -> Channel:
        """Wait until channel ``uuid`` fired ``name`` (``count`` times)."""
        return self.wait_for(lambda: (ch := self.history.get(uuid)) is not None and ch.events.count(name) >= count
                             and ch, timeout)

    def wait_gone(self, uuid: str, timeout: float = 5.0) -> Channel:
        return self.wait_for(lambda: uuid in self.history and uuid not in self.channels and self.history[uuid],
                             timeout)

    def reset_history(self) -> None:
        self.history = {uuid: ch for uuid, ch in self.channels.items()}

    # -- API ---------------------------------------------------------------------------------
    def run_api(self, name: str, args: str) -> str:
        seq, us = self.core.next_sequence(), now_us()
        body = api_commands.execute(self, name, args)
        self._fire_api_event(name, args, seq, us)
        return body

    def run_bgapi(self, name: str, args: str, job: str, owner: str | None = None) -> None:
        def job_runner():
            body = self.run_api(name, args)
            headers = [("Job-UUID", job), ("Job-Owner-UUID", owner or ""), ("Job-Command", name),
                       ("Job-Command-Arg", args)]
            self.core.fire("BACKGROUND_JOB", ("mod_event_socket.c", "api_exec", 1572), lambda: headers,
                           body=body or "-ERR no reply\n", job_owner=owner)

        gevent.spawn(job_runner)

    def _fire_api_event(self, name: str, args: str, seq: int, us: int) -> None:
        headers = [("API-Command", name), ("API-Command-Argument", args)]
        wanting = [lst for lst in self.core.listeners if lst.wants("API", None)]
        if not wanting:
            return
        from .core import Event

        event = Event("API", self.core.common("API", ("switch_loadable_module.c", "switch_api_execute", 2954), us, seq)
                      + headers)
        for listener in wanting:
            listener.deliver(event)

    def send_event(self, name: str, headers, body: str | None, event_uuid: str) -> None:
        from .subscriptions import event_name

        known = event_name(name) or "CUSTOM"
        subclass = dict((k.lower(), v) for k, v in headers).get("event-subclass")
        skip = ("content-length", "event-name", "event-subclass") if subclass and known == "CUSTOM" else ("content-length",)
        extra = [(k, v) for k, v in headers if k.lower() not in skip] + [("Event-UUID", event_uuid)]
        self.core.fire(known, ("mod_event_socket.c", "parse_command", 2123), lambda: extra, subclass=subclass,
                       body=body, prefix=[("Event-Subclass", subclass)] if subclass and known == "CUSTOM" else ())

    def stats(self) -> dict[str, int]:
        t = self.throttle
        return {"since_startup": self._session_counter, "count": len(self.channels), "peak": self._peak,
                "peak_5min": self._peak, "per_sec": t.last, "per_sec_peak": t.peak, "per_sec_5min": t.peak_fivemin}

    def request_session(self) -> bool:
        """``switch_core_session_request_uuid``'s limits, asked once for every session about
        to be created (``throttle.py``); False: the switch refuses it."""
        return self.throttle.request(len(self.channels))

    # -- internals ---------------------------------------------------------------------------
    def _live(self, uuid: str) -> Channel:
        ch = self.channels.get(uuid)
        if ch is None or ch.session is None:
            raise KeyError(f"no live channel {uuid}")
        return ch

    def _next_session_id(self) -> int:
        self._session_counter += 1
        return self._session_counter

    def _session(self, ch: Channel, dialog=None) -> Session:
        return Session(self, ch, dialog)

    def _add_channel(self, ch: Channel) -> None:
        self.channels[ch.uuid] = ch
        self.history[ch.uuid] = ch
        while len(self.history) > self.history_limit:
            oldest = next(iter(self.history))
            if oldest in self.channels:
                break
            del self.history[oldest]
        self._peak = max(self._peak, len(self.channels))

    def _channel_gone(self, ch: Channel) -> None:
        if self.channels.get(ch.uuid) is ch:
            del self.channels[ch.uuid]
        for listener in list(self.listeners):
            if listener.session_uuid == ch.uuid:
                listener.session_gone(ch)
        self._notify()

    def _listener_added(self, listener) -> None:
        self.listeners.append(listener)
        self.core.listeners.append(listener)

    def _listener_gone(self, listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)
        if listener in self.core.listeners:
            self.core.listeners.remove(listener)

    def _on_event(self, name: str, uuid: str | None) -> None:
        if self._waiters:
            self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, GEvent()
        changed.set()

    def _queue_dtmf(self, session: Session, digits: str, *, duration: int, source: str) -> None:
        def deliver():
            for i, digit in enumerate(digits):
                if i and self.dtmf_interval:
                    gevent.sleep(self.dtmf_interval)
                session.receive_dtmf(digit, duration=duration, source=source)

        gevent.spawn(deliver)

    def _queue_message(self, session: Session, cmd) -> None:
        """``sendmsg``: queue the private event; the session runs it when parked or
        between applications.  ``arrived`` stamps when it came: a playback it runs starts
        from the first frame after that, however late the session greenlet wakes; a
        ``lead-frames`` header delays it that many frames (``Session.play``)."""
        headers = [("Command", cmd.line)] + list(cmd.headers.items())
        command = (cmd.header("call-command") or "execute").lower()
        body = cmd.body.decode("utf-8", "replace") if cmd.body else None
        message = {"headers": headers, "body": body, "command": command, "arrived": time.monotonic()}
        lead = cmd.header("lead-frames") or ""
        if lead.isascii() and lead.isdigit():
            message["lead_frames"] = int(lead)
        if command == "execute":
            arg = cmd.header("execute-app-arg")
            if arg is None and body is not None:
                arg = body
            loops = cmd.header("loops") or "1"
            message.update(app=cmd.header("execute-app-name") or "", arg=arg or "",
                           loops=int(loops) if loops.lstrip("-").isdigit() else 1,
                           event_uuid=cmd.header("event-uuid"), event_uuid_name=cmd.header("event-uuid-name"))
        elif command == "hangup":
            message["cause"] = cmd.header("hangup-cause") or "NORMAL_CLEARING"
        else:
            message["command"] = "ignore"
        session.messages.append(message)
        session.signal()

    def _timer_loop(self) -> None:
        """The timer thread's once-a-second refill of the session budget."""
        while True:
            gevent.sleep(1.0)
            self.throttle.tick()
            if self._waiters:
                self._notify()

    def _heartbeat_loop(self) -> None:
        while True:
            gevent.sleep(self.heartbeat_interval)
            self.fire_heartbeat()

    def fire_heartbeat(self) -> None:
        core = self.core
        up_us = now_us() - core.started_us
        s = self.stats()
        headers = [
            ("Event-Info", "System Ready"), ("Up-Time", api_commands.uptime_text(up_us)),
            ("FreeSWITCH-Version", FS_VERSION), ("Uptime-msec", str(up_us // 1000)),
            ("Session-Count", str(s["count"])), ("Max-Sessions", str(self.throttle.max_sessions)),
            ("Session-Per-Sec", str(self.throttle.remaining_unsigned)),
            ("Session-Per-Sec-Last", str(s["per_sec"])), ("Session-Per-Sec-Max", str(s["per_sec_peak"])),
            ("Session-Per-Sec-FiveMin", str(s["per_sec_5min"])), ("Session-Since-Startup", str(s["since_startup"])),
            ("Session-Peak-Max", str(s["peak"])), ("Session-Peak-FiveMin", str(s["peak_5min"])),
            ("Idle-CPU", "99.000000"),
        ]
        core.fire("HEARTBEAT", ("switch_core.c", "send_heartbeat", 95), lambda: headers)
        runtime = int(time.time() + (self.heartbeat_interval or 20))
        core.fire("RE_SCHEDULE", ("switch_scheduler.c", "switch_scheduler_execute", 73),
                  lambda: [("Task-ID", "1"), ("Task-Desc", "heartbeat"), ("Task-Group", "core"),
                           ("Task-Runtime", str(runtime))])

    def log(self, line) -> None:
        """Send a ``logs.LogLine`` FreeSWITCH writes to every connection that asked for it."""
        for listener in list(self.listeners):
            listener.deliver_log(line)

    def speak_seconds(self, text: str) -> float:
        return max(0.2, len(text) / self.speak_chars_per_second) if self.speak_chars_per_second else 0.0
