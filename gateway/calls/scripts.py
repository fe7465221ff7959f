"""Playback scripts: what an answered call of the public calling API does.

A script is a small unit with ``run()`` and ``cancel()`` (jambonz's task verbs, one per
kind), run in its own greenlet once the call is answered:

==============  ===========================================================================
``AudioBlast``  record, play the clip, hang up
``Press1``      record, play the clip and collect one key (``play_and_get_digits``), then
                do what ``dtmf_map`` says for it: ``connect_agent`` transfers the call to
                the account's agent destination, ``hangup`` ends it; no key or a key
                outside the map ends it
``SpeakCode``   read a verification code out: the message's words with ``speak``, the code
                from an audio file of its digits (``gateway.otp.readout``: so the code is in
                no FreeSWITCH log or event), hang up; not recorded
==============  ===========================================================================

Everything a script needs is checked before the call is placed (``check_dtmf_map`` and
the API's validation), so a script only meets FreeSWITCH's own failures: the call
hanging up (the script just stops), a refused command (logged, the call is hung up).

Each step is a dialplan application sent with ``sendmsg`` (``CallController.execute``);
the script waits for its CHANNEL_EXECUTE_COMPLETE, whose ``variable_*`` headers carry
what the application set (the collected digit). FreeSWITCH expands variables in an
application's argument (``gateway.esl.app_args``): client text goes into one only through
``speak_arg``, and the file paths the gateway built are checked (``app_args.file_path``).

``ScriptRunner`` is a controller listener: on ``in_progress`` it asks its resolver for
the call's script (from the database, so a call placed by another process, or before a
restart, still gets its script) and runs it; on a final status it cancels it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable

import gevent
from gevent.event import AsyncResult

from gateway.calls.errors import CallError
from gateway.domain import FINAL, Status
from gateway.esl import app_args
from gateway.greenlets import GreenletOwner
from gateway.models import DTMF_ACTIONS
from gateway.otp import readout

logger = logging.getLogger(__name__)

DEFAULT_DTMF_MAP = {"1": "connect_agent"}
DTMF_KEYS = "0123456789*#"
PRESS1_VARIABLE = "gateway_press1_digit"
TTS_ENGINE = "flite"
TTS_VOICE = "kal"

# How long to wait for an application's completion beyond its own length.
STEP_MARGIN = 30.0
#: Seconds the callee has to press a key after the clip (play_and_get_digits' timeout).
PRESS1_TIMEOUT_MS = 5000


class ScriptError(Exception):
    """A step could not be carried out (FreeSWITCH refused, the call went away)."""


def check_dtmf_map(value) -> dict[str, str]:
    """A press-1 ``dtmf_map``: keys one of ``0-9 * #``, values one of ``DTMF_ACTIONS``.
    ``None`` gives the default. Raises ``ValueError``."""
    if value is None:
        return dict(DEFAULT_DTMF_MAP)
    if not isinstance(value, dict) or not value:
        raise ValueError("dtmf_map must be an object mapping keypad keys to actions")
    checked = {}
    for key, action in value.items():
        if not isinstance(key, str) or len(key) != 1 or key not in DTMF_KEYS:
            raise ValueError("dtmf_map keys must be single keypad keys: 0-9, * or #")
        if action not in DTMF_ACTIONS:
            raise ValueError(f"dtmf_map actions must be one of {', '.join(DTMF_ACTIONS)}")
        checked[key] = action
    return checked


def speak_arg(text: str) -> str:
    """``speak``'s argument: ``<engine>|<voice>|<text>``, the text as ``app_args.speech_text``
    leaves it (nothing FreeSWITCH expands or splits on, on one line)."""
    return f"{TTS_ENGINE}|{TTS_VOICE}|{app_args.speech_text(text)}"


@dataclass
class Script:
    """One answered call's script. ``controller`` is the ``CallController``; ``node`` the
    name of the FreeSWITCH node the call is on."""

    controller: object
    call_uuid: str
    node: str
    greenlet: gevent.Greenlet | None = field(default=None, repr=False)
    steps: list[str] = field(default_factory=list)  # applications run, for tests and logs

    kind = "script"

    def run(self) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        if self.greenlet is not None and not self.greenlet.dead and gevent.getcurrent() is not self.greenlet:
            self.greenlet.kill(block=False)

    # -- steps ------------------------------------------------------------------------------
    def execute(self, app: str, arg: str = "", timeout: float = STEP_MARGIN, *, secret: bool = False):
        """Run ``app`` on the call and wait for its CHANNEL_EXECUTE_COMPLETE event.

        ``secret``: the argument must not reach the call's log (an OTP readout's path)."""
        sent: dict[str, str | None] = {"uuid": None}

        def completed(event) -> bool:
            if event.name != "CHANNEL_EXECUTE_COMPLETE" or event.get("Application") != app:
                return False
            return sent["uuid"] is None or event.get("Application-UUID") == sent["uuid"]

        waiter: AsyncResult = self.controller.expect(self.call_uuid, completed)
        try:
            sent["uuid"] = self.controller.execute(self.call_uuid, app, arg, log_arg=not secret)
        except CallError as exc:
            raise ScriptError(f"{app}: {exc}") from None
        self.steps.append(app)
        try:
            return waiter.get(timeout=timeout)
        except CallError:
            raise ScriptError(f"{app}: the call ended") from None
        except gevent.Timeout:
            raise ScriptError(f"{app}: no completion within {timeout:.0f} s") from None

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        try:
            self.controller.hangup(self.call_uuid, cause)
        except CallError as exc:
            logger.info("call %s: hangup after %s: %s", self.call_uuid, self.kind, exc)


@dataclass
class AudioBlast(Script):
    clip_path: str = ""
    clip_seconds: float = 0.0
    record_to: str | None = None

    kind = "audio_blast"

    def run(self) -> None:
        if self.record_to:
            self.execute("record_session", _path(self.record_to))
        self.execute("playback", _path(self.clip_path), timeout=self.clip_seconds + STEP_MARGIN)
        self.hangup()


@dataclass
class Press1(Script):
    clip_path: str = ""
    clip_seconds: float = 0.0
    dtmf_map: dict = field(default_factory=lambda: dict(DEFAULT_DTMF_MAP))
    agent_destination: str | None = None
    record_to: str | None = None
    #: ``on_result(digit or None, action or None)``, called before the action is taken.
    on_result: Callable[[str | None, str | None], None] | None = None
    timeout_ms: int = PRESS1_TIMEOUT_MS

    kind = "press1"

    def pgd_arg(self) -> str:
        keys = "".join(sorted(self.dtmf_map))
        terminators = "none" if "#" in keys else "#"
        pattern = "^[" + re.sub(r"([\\\]\[^-])", r"\\\1", keys) + "]$"
        return (f"1 1 1 {self.timeout_ms} {terminators} {_path(self.clip_path)} silence_stream://250 "
                f"{PRESS1_VARIABLE} {pattern} {self.timeout_ms}")

    def run(self) -> None:
        if self.record_to:
            self.execute("record_session", _path(self.record_to))
        done = self.execute("play_and_get_digits", self.pgd_arg(),
                            timeout=self.clip_seconds + self.timeout_ms / 1000 + STEP_MARGIN)
        digit = done.get(f"variable_{PRESS1_VARIABLE}") or None
        action = self.dtmf_map.get(digit) if digit else None
        if self.on_result is not None:
            try:
                self.on_result(digit, action)
            except Exception:
                logger.exception("call %s: recording the press-1 result failed", self.call_uuid)
        if action == "connect_agent" and self.agent_destination:
            try:
                self.controller.transfer(self.call_uuid, self.agent_destination)
                self.steps.append("transfer")
                return
            except CallError as exc:
                logger.warning("call %s: transfer to the agent failed: %s", self.call_uuid, exc)
        self.hangup()


@dataclass
class SpeakCode(Script):
    """``parts`` are the message's words around each ``{code}``: spoken in turn, with the
    code played between two of them. The readout file exists while the script runs."""

    code: str = ""
    parts: list[str] = field(default_factory=list)

    kind = "otp"

    def run(self) -> None:
        if self.code:  # no code: nothing to say (see otp.service.script_for)
            path = readout.write(self.code)
            try:
                self._read_out(_path(str(path)), readout.seconds(self.code))
            finally:
                readout.discard(path)
        self.hangup()

    def _read_out(self, path: str, seconds: float) -> None:
        for index, words in enumerate(self.parts):
            text = app_args.speech_text(words)
            if any(ch.isalnum() for ch in text):
                self.execute("speak", speak_arg(text), timeout=len(text) / 5 + STEP_MARGIN)
            if index < len(self.parts) - 1:
                # secret: the file holds the code while the call lasts; its path stays out of the call log
                self.execute("playback", path, timeout=seconds + STEP_MARGIN, secret=True)


def _path(path: str) -> str:
    try:
        return app_args.file_path(path)
    except app_args.UnsafeArgument as exc:
        raise ScriptError(str(exc)) from None


Resolver = Callable[[str], "Script | None"]


class ScriptRunner:
    """Runs the script of each answered call the resolver knows; cancels it when the
    call ends. Install with ``controller.listeners.append(runner.on_transition)``."""

    def __init__(self, controller, resolve: Resolver, database=None) -> None:
        self.controller = controller
        self.resolve = resolve
        self.database = database
        self.running: dict[str, Script] = {}
        self.finished: dict[str, Script] = {}  # the last few, for tests and inspection
        self._greenlets = GreenletOwner("playback scripts")

    def on_transition(self, call_uuid: str, transition) -> None:
        """Controller listener (runs on the worker): never blocks."""
        if transition.to_status is Status.IN_PROGRESS:
            self._greenlets.spawn(self._start, call_uuid)
        elif transition.to_status in FINAL:
            script = self.running.pop(call_uuid, None)
            if script is not None:
                script.cancel()

    def stop(self, grace: float = 5.0) -> None:
        """Cancel every running script, then wait (up to ``grace``) for their greenlets."""
        for script in list(self.running.values()):
            script.cancel()
        self._greenlets.stop(grace)

    def _start(self, call_uuid: str) -> None:
        if call_uuid in self.running:
            return
        try:
            with _connection(self.database):
                script = self.resolve(call_uuid)
        except Exception:
            logger.exception("call %s: no script could be built", call_uuid)
            return
        if script is None:
            return
        self.running[call_uuid] = script
        script.greenlet = gevent.getcurrent()
        try:
            with _connection(self.database):
                script.run()
        except ScriptError as exc:
            logger.info("call %s: %s script stopped: %s", call_uuid, script.kind, exc)
            if "the call ended" not in str(exc):
                script.hangup()
        except gevent.GreenletExit:
            pass
        except Exception:
            logger.exception("call %s: %s script failed", call_uuid, script.kind)
            script.hangup()
        finally:
            self.running.pop(call_uuid, None)
            self.finished[call_uuid] = script
            while len(self.finished) > 1000:
                self.finished.pop(next(iter(self.finished)))


class _connection:
    """Close, on the way out, a database connection this greenlet opened inside (a pooled
    connection left open by a finished greenlet never returns to the pool)."""

    def __init__(self, database) -> None:
        self.database = database
        self.was_closed = True

    def __enter__(self):
        if self.database is not None:
            self.was_closed = self.database.is_closed()
        return self

    def __exit__(self, *exc) -> None:
        if self.database is not None and self.was_closed and not self.database.is_closed():
            self.database.close()
