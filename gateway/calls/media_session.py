"""A call's bot session: starting the stream, redirect, and the failure policy.

On CHANNEL_ANSWER (the controller's ``in_progress`` transition) ``MediaSessions``:

1. decides the media target (``gateway.calls.bot_target``: the call's ``socket_url``, its
   agent, the routing webhook, its number, the account's defaults; a bare ``elevenlabs``
   or ``vapi`` gets its agent id from the number's or the account's settings); the
   connector gets the target's id and the provider's key from the account
   (``elevenlabs_api_key``, ``vapi_api_key``);
2. opens the call's ``CallStream`` on the bridge (playback form from the node's settings)
   and, at the same time, connects the bot and sends ``uuid_audio_stream <uuid> start
   <bridge url> mono 8k <metadata>``;
3. once the bot and FreeSWITCH's stream are both connected, logs ``session_established``
   (the call-control contract's ``call.answered`` is sent from that entry).

Failure policy (every step is written to the call's log, kind ``media``):

* the bot cannot be reached (its address not allowed by ``gateway.net_policy``, refused,
  DNS, TLS, upgrade refused, no answer within ``bot_connect_timeout``, provider API
  error, no agent id or key; a bot URL's log entry says only which of "address not
  allowed", "host name does not resolve", "connection failed") -> the account's
  ``default_socket_url`` is tried once, if it is a different target -> else the call is
  hung up with ``hangup_cause`` (SERVICE_UNAVAILABLE) and reason ``bot_unreachable``;
* the bot's socket breaks mid-call (no close frame, a close code other than 1000/1001,
  or it stops reading for 10 s) -> the same fallback once -> else hang up, reason
  ``bot_disconnected``;
* the bot closes cleanly (1000/1001: it is done, e.g. ElevenLabs' ``end_call``) -> the
  audio it already sent plays out (at most 10 s), then the call is hung up with
  NORMAL_CLEARING, reason ``bot_ended``;
* mod_audio_stream reports an error, does not connect within ``fs_connect_timeout``, or
  its socket drops while the call lives -> the stream is restarted once -> else hang
  up, reason ``media_stream_failed``;
* the routing webhook answers ``hangup`` -> hang up with NORMAL_CLEARING and its reason;
  no target at all -> hang up, reason ``no_media_target``; a routing ``timeout``
  (seconds) ends the call with NORMAL_CLEARING, reason ``session_timeout``.  An inbound
  call is decided *before* it is answered (``screen_inbound``, the controller's
  ``inbound_screens``): one that would get no bot is refused unanswered instead, with
  ``Refusal.unanswered_cause`` (CALL_REJECTED for a routing ``hangup``);
* a malformed message from a bot is logged (the first 10 per call) and skipped.

Redirect (``redirect(call_uuid, media_server)``) connects the new bot first, while the
old one keeps talking, then swaps: the old bot gets ``stop``, the new one has had
``connected``/``start``, the FreeSWITCH stream is untouched and the caller's audio goes
to the new bot from the next 20 ms frame on.

Transfer and coming back (``before_transfer``, ``take_back``; ``gateway.calls.handback``):
before a transfer is sent, FreeSWITCH's stream is stopped, the bot gets ``stop`` and the
session ends with no failure policy (log ``session_ended``, reason ``transfer``).  A call
that comes back gets a new session: after a failed transfer, the target it had; after a
restart, the target decided as at answer, once the old process's stream is stopped (a
second ``start`` on an attached media bug fails).  A bot that cannot be had then ends the
call as at answer (``bot_unreachable``).

Transcript: the bot's lines go to the call's log (kind ``transcript``) as they come and to
``Call.transcript`` when the session ends; a line the caller cut short is replaced by what
was heard of it (``TranscriptCorrection``, logged as ``{"bot": …, "corrects": …}``); a
connector with its own record of the conversation (Vapi's call artifact,
``BotLink.final_transcript``) replaces ``Call.transcript`` with it after the call.

ESL events reach the call's stream through the controller's ``event_hooks`` (every event
of a live call, on its worker, in order): ``bridge.STREAM_EVENTS``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import gevent
import gevent.event
from peewee import IntegrityError

from gateway.calls import inbound
from gateway.calls.bot_target import BotTargets, Refusal, Target, call_number
from gateway.calls.errors import CallError
from gateway.domain import AGENT_DRIVERS, FINAL, MEDIA_ESTABLISHED, PROVIDERS, Driver, Status, Surface
from gateway.config import MediaSettings
from gateway.media.bridge import STREAM_EVENTS, CallStream, MediaBridge
from gateway.media.connectors import BotLink, BotUnavailable, CallInfo, open_link
from gateway.media.twilio import Closed
from gateway.greenlets import GreenletOwner
from gateway.models.db import connection_scope, release_connection
from gateway.models import Account, Agent, Call, CallEvent
from gateway.voice_agents import conversation_initiation, tools as agent_tools
from gateway.webhooks import routing
from gateway.webhooks.provider import register_provider_call

logger = logging.getLogger(__name__)

DRAIN_LIMIT = 10.0  # seconds of a finished bot's audio still played before the hangup


@dataclass
class MediaSession:
    call_uuid: str
    account_id: int
    info: CallInfo
    stream: CallStream
    target: Target
    link: BotLink | None = None
    tried: list[str] = field(default_factory=list)  # labels of targets tried
    fallback_used: bool = False
    stream_restarted: bool = False
    ended: bool = False
    transcript: list[dict] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)


def _voice_agent(call_uuid: str, target: Target) -> Agent | None:
    """The call's agent when it was built on the voice-agent admin surface (it has a
    profile) and ``target`` is its ElevenLabs agent: its conversations start with its
    profile (``gateway.voice_agents.conversation_initiation``) and run its tools. An agent
    without a profile sends none: its ElevenLabs agent may not allow overrides."""
    if target.kind != Driver.ELEVENLABS:
        return None
    with connection_scope():
        agent = (Agent.select().join(Call, on=(Call.agent == Agent.id))
                 .where(Call.uuid == call_uuid).first())
    if agent is None or agent.driver != Driver.ELEVENLABS or agent.driver_ref != target.ref or not agent.profile:
        return None
    return agent


def _tool_runner(agent: Agent, call_uuid: str) -> Callable[[str, dict], tuple[str, bool]]:
    """``run_tool`` for the ElevenLabs connector: the agent's tools, each run recorded on
    the call. The connector runs it in a greenlet of its own, with a timeout."""
    def run(tool_name: str, parameters: dict) -> tuple[str, bool]:
        with connection_scope():
            return agent_tools.run_tool(agent, tool_name, parameters, call_uuid=call_uuid)
    return run


def _own_number(session: MediaSession) -> str | None:
    """The account's number on the session's call, whose provider settings apply."""
    return call_number(session.info.direction, session.info.from_number, session.info.to_number)


class _Commands:
    """The controller commands a ``CallStream`` sends."""

    def __init__(self, controller) -> None:
        self.controller = controller

    def play(self, call_uuid: str, path: str) -> None:
        self.controller.execute(call_uuid, "playback", path, log=False)

    def break_playback(self, call_uuid: str) -> None:
        self.controller.break_playback(call_uuid)


def transcript(call_uuid: str) -> list[dict]:
    """The call's conversation as ``[{"user": …}, {"bot": …}, …]``, in order, with the
    bot's corrected lines (a log entry ``{"bot": corrected, "corrects": original}``) applied."""
    rows = (CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "transcript")
            .order_by(CallEvent.seq))
    lines: list[dict] = []
    for row in rows:
        if "corrects" in row.detail:
            correct_line(lines, row.detail["corrects"], row.detail.get("bot", ""))
        else:
            lines.append(row.detail)
    return lines


def correct_line(lines: list[dict], original: str, corrected: str) -> bool:
    """Replace the bot's latest line ``original`` with ``corrected`` (what the caller heard
    of it); False when no such line is there."""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].get("bot", "").strip() == original.strip():
            lines[i] = {"bot": corrected}
            return True
    return False


class MediaSessions:
    """Every bot session of this process; see the module docstring."""

    def __init__(self, controller, bridge: MediaBridge, settings: MediaSettings | None = None, *,
                 request_route: Callable | None = None, hangup_cause: str = "SERVICE_UNAVAILABLE",
                 fs_connect_timeout: float = 5.0) -> None:
        self.controller = controller
        self.bridge = bridge
        self.settings = settings or MediaSettings()
        self.hangup_cause = hangup_cause
        self.fs_connect_timeout = fs_connect_timeout
        self.sessions: dict[str, MediaSession] = {}
        self._commands = _Commands(controller)
        self.targets = BotTargets(request_route or routing.request_route, hangup_cause, self._log)
        self._greenlets = GreenletOwner("media sessions")
        # After-call polls of a provider's transcript (Vapi's artifact, up to a minute):
        # a stop ends them at once rather than waiting for them.
        self._polls = GreenletOwner("provider transcript polls")
        self._stopping = gevent.event.Event()
        # Inbound calls are decided before they are answered (``screen_inbound``); the
        # decision waits here for the answer.
        self._decided: dict[str, tuple[Target, float | None]] = {}
        controller.inbound_screens.append(self.screen_inbound)
        controller.listeners.append(self._on_transition)
        controller.event_hooks.append(self._on_event)
        # Sessions ended by a transfer, kept for the call's return (``take_back``).
        self._transferred: dict[str, MediaSession] = {}
        controller.before_transfer.append(self.before_transfer)
        controller.take_back.append(self.take_back)
        controller.listeners.append(self._forget_transferred)

    def _spawn(self, call_uuid: str, fn, *args) -> None:
        self._greenlets.spawn(self._guarded, call_uuid, fn, *args)

    def _guarded(self, call_uuid: str, fn, *args) -> None:
        """Run one step of a call's session.  Whatever it raises, the call is not left in
        dead air: a live call whose session has not ended is hung up (``media_failed``).
        Steps open a database connection only around their queries, never while they
        wait on a bot or on FreeSWITCH; what one left open is given back here."""
        try:
            fn(*args)
        except Exception:
            logger.exception("call %s: media session step %s failed", call_uuid, getattr(fn, "__name__", fn))
            session = self.sessions.get(call_uuid)
            if call_uuid in self.controller.live and (session is None or not session.ended):
                self._hangup(call_uuid, self.hangup_cause, "media_failed")
        finally:
            release_connection()

    # -- controller callbacks (must not block) ------------------------------------------
    def _on_transition(self, call_uuid: str, transition) -> None:
        if transition.to_status is Status.IN_PROGRESS:
            self._spawn(call_uuid, self.begin, call_uuid)
        elif transition.to_status in FINAL:
            self._decided.pop(call_uuid, None)
            session = self.sessions.pop(call_uuid, None)
            if session is not None:
                self._spawn(call_uuid, self._finish, session)

    def _on_event(self, call_uuid: str, event) -> None:
        if event.name in STREAM_EVENTS:
            self.bridge.route_event(call_uuid, event)

    # -- starting -----------------------------------------------------------------------
    def begin(self, call_uuid: str) -> MediaSession | None:
        if call_uuid in self.sessions:
            return self.sessions[call_uuid]
        with connection_scope():
            call = Call.get_or_none(Call.uuid == call_uuid)
            if call is None:
                return None
            if call.surface == Surface.PUBLIC:
                return None  # played by gateway.calls.scripts (blast, press-1, OTP), not by a bot
            account = Account.get_by_id(call.account_id)
        info = CallInfo(call.uuid, str(account.id), call.direction, call.from_number, call.to_number,
                        dict(call.custom_args or {}))
        try:
            target, timeout = self._decided.pop(call_uuid, None) or self.targets.decide(call, account)
        except (Refusal, ValueError) as exc:
            refusal = self._no_bot(call_uuid, exc)
            self._hangup(call_uuid, refusal.cause, refusal.reason)
            return None
        form = self.settings.playback_for(call.node)
        stream = self.bridge.open(call_uuid, form=form, control=self._commands, owner=self)
        session = MediaSession(call_uuid, account.id, info, stream, target)
        self.sessions[call_uuid] = session
        self._log(call_uuid, {"event": "media_target", "target": target.label, "source": target.source,
                              "playback": form})
        self._spawn(call_uuid, self._connect_first, session)
        if timeout:
            self._greenlets.spawn_later(timeout, self._guarded, call_uuid, self._session_timeout, session)
        self._start_stream(session)
        self._spawn(call_uuid, self._watch_fs, session)
        return session

    def _start_stream(self, session: MediaSession) -> bool:
        metadata = json.dumps({"call_uuid": session.call_uuid, "account_id": session.info.account_id,
                               "direction": session.info.direction}, separators=(",", ":"))
        try:
            self.controller.start_stream(session.call_uuid, self.bridge.url_for(session.stream), "mono", "8k",
                                         metadata)
            return True
        except CallError as exc:
            self._log(session.call_uuid, {"event": "stream_start_failed", "error": str(exc)})
            return False

    def _watch_fs(self, session: MediaSession) -> None:
        if not session.stream.fs_connected.wait(self.fs_connect_timeout) and not session.ended:
            self.fs_failed(session.stream, f"mod_audio_stream did not connect within {self.fs_connect_timeout}s")

    def _connect_first(self, session: MediaSession) -> None:
        link = self._open(session, session.target)
        if link is None and not session.ended:
            fallback = self._fallback(session)
            if fallback is not None:
                link = self._open(session, fallback)
        if session.ended:
            if link is not None:
                link.close(stop=True)
            return
        if link is None:
            self._give_up(session, "bot_unreachable")
            return
        session.link = link
        session.stream.set_bot(link)
        self._announce_established(session)

    def _announce_established(self, session: MediaSession) -> None:
        """Log :data:`~gateway.domain.MEDIA_ESTABLISHED` once the bot and
        FreeSWITCH's stream are both connected: the outbox sends ``call.answered`` from
        that entry (a stream that never connects is ``_watch_fs``'s failure)."""
        if session.stream.fs_connected.wait(self.fs_connect_timeout) and not session.ended:
            self._log(session.call_uuid, {"event": MEDIA_ESTABLISHED, "target": session.link.label})

    # -- deciding the target ------------------------------------------------------------
    def screen_inbound(self, call_uuid: str) -> inbound.InboundRefusal | None:
        """``CallController.inbound_screens`` entry: decide an inbound call's bot before
        the call is answered, so that a call that gets none (routing webhook ``hangup``,
        no target) is refused unanswered; ``begin`` then uses this decision."""
        with connection_scope():
            call = Call.get_or_none(Call.uuid == call_uuid)
            account = Account.get_by_id(call.account_id) if call is not None else None
        if call is None or call.surface == Surface.PUBLIC:
            return None
        try:
            self._decided[call_uuid] = self.targets.decide(call, account)
        except (Refusal, ValueError) as exc:
            refusal = self._no_bot(call_uuid, exc)
            return inbound.InboundRefusal(refusal.reason, refusal.unanswered_cause)
        return None

    def _no_bot(self, call_uuid: str, exc: Exception) -> Refusal:
        refusal = exc if isinstance(exc, Refusal) else Refusal("invalid_media_target", self.hangup_cause)
        # What a person needs to know, if the reason does not say it (a setting missing).
        error = str(exc) if str(exc) != refusal.reason else None
        self._log(call_uuid, {"event": "no_bot", "reason": refusal.reason, **({"error": error} if error else {})})
        return refusal

    def _fallback(self, session: MediaSession) -> Target | None:
        if session.fallback_used:
            return None
        session.fallback_used = True
        with connection_scope():
            account = Account.get_by_id(session.account_id)
            if not account.default_socket_url:
                return None
            try:
                target = self.targets.given(account, account.default_socket_url, "fallback",
                                            _own_number(session))
            except (ValueError, Refusal):
                return None
        if target.label in session.tried:
            return None
        self._log(session.call_uuid, {"event": "fallback", "target": target.label})
        return target

    # -- connecting -----------------------------------------------------------------------
    def _open(self, session: MediaSession, target: Target) -> BotLink | None:
        session.tried.append(target.label)
        api_key = None
        if target.kind in PROVIDERS:
            with connection_scope():
                account = Account.get_by_id(session.account_id)
                api_key = account.elevenlabs_api_key if target.kind == Driver.ELEVENLABS else account.vapi_api_key
        info, voice_agent = session.info, {}
        agent = _voice_agent(session.call_uuid, target)
        if agent is not None:
            opening = conversation_initiation(agent, session.info.custom_args)
            info = replace(session.info, custom_args=opening["dynamic_variables"])
            voice_agent = {"config_override": opening["conversation_config_override"],
                           "run_tool": _tool_runner(agent, session.call_uuid)}
        started = time.monotonic()
        try:
            if target.kind not in AGENT_DRIVERS:
                raise BotUnavailable(f"unknown target {target.kind!r}")
            timeout = self.settings.bot_connect_timeout
            with gevent.Timeout(timeout + 1.0, BotUnavailable("timed out")):
                link = open_link(target.kind, target.ref or "", info, connect_timeout=timeout,
                                 api_key=api_key, elevenlabs_url=self.settings.elevenlabs_url,
                                 vapi_url=self.settings.vapi_url, **voice_agent)
        except BotUnavailable as exc:
            self._log(session.call_uuid, {"event": "bot_connect_failed", "target": target.label,
                                          "connector": target.kind, "error": str(exc)})
            return None
        except Exception as exc:  # a connector bug must not take the call down silently
            logger.exception("call %s: connecting %s failed", session.call_uuid, target.label)
            self._log(session.call_uuid, {"event": "bot_connect_failed", "target": target.label,
                                          "connector": target.kind, "error": type(exc).__name__})
            return None
        self._log(session.call_uuid, {"event": "bot_connected", "target": link.label, "connector": link.kind,
                                      "connect_ms": round((time.monotonic() - started) * 1000, 1)})
        return link

    # -- redirect -------------------------------------------------------------------------
    def redirect(self, call_uuid: str, media_server: str) -> dict:
        """Swap the call's bot without touching FreeSWITCH; raises ``CallError``."""
        session = self.sessions.get(call_uuid)
        if session is None or session.ended:
            raise CallError("the call has no active media session", code=409)
        try:
            with connection_scope():
                account = Account.get_by_id(session.account_id)
            target = self.targets.given(account, media_server, "redirect", _own_number(session))
        except ValueError as exc:
            raise CallError(str(exc), code=400) from None
        except Refusal as refusal:  # an unknown agent, a provider not configured: what is missing
            raise CallError(str(refusal), code=400) from None
        old_label = session.link.label if session.link is not None else None
        link = self._open(session, target)
        if link is None:
            raise CallError(f"media server {target.label} is unreachable", code=502)
        if session.ended:
            link.close(stop=False)
            raise CallError("the call has ended", code=409)
        stream = session.stream
        last_old = stream.last_frame_to_bot
        session.link, session.target = link, target
        stream.set_bot(link)
        self._spawn(call_uuid, self._log_redirect_gap, session, link, old_label, last_old)
        return {"call_uuid": call_uuid, "media_server": target.label, "connector": link.kind}

    def _log_redirect_gap(self, session: MediaSession, link: BotLink, old_label, last_old) -> None:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and id(link) not in session.stream.first_frame_to_bot:
            gevent.sleep(0.02)
        first_new = session.stream.first_frame_to_bot.get(id(link))
        gap = round((first_new - last_old) * 1000, 1) if first_new and last_old else None
        self._log(session.call_uuid, {"event": "redirect", "from": old_label, "to": link.label,
                                      "caller_audio_gap_ms": gap})

    # -- transfer, and the call coming back (a failed transfer, a restart) -----------------
    def before_transfer(self, call_uuid: str) -> None:
        """``CallController.before_transfer``: once transferred, the caller must not be
        heard by the bot nor the bot by the transferred call.  Stop FreeSWITCH's stream, give
        the bot its ``stop`` and end the session; its end is no failure (no
        ``stream_failed``, no hangup)."""
        session = self.sessions.pop(call_uuid, None)
        if session is None or session.ended:
            return
        session.ended = True
        try:
            self.controller.stop_stream(call_uuid)
        except CallError as exc:  # logged by the controller; the transfer goes on
            logger.info("call %s: stream not stopped before the transfer: %s", call_uuid, exc)
        self._log(call_uuid, {"event": "session_ended", "reason": "transfer",
                              "target": session.link.label if session.link else session.target.label})
        self._finish(session)
        self._transferred[call_uuid] = session

    def take_back(self, call_uuid: str) -> bool:
        """``CallController.take_back``: a new session for a bot call that came back.  True
        when the call is ours to serve (its bot, or its end with a reason logged)."""
        if call_uuid in self.sessions:
            return True  # it never left: this process's link to FreeSWITCH came back
        with connection_scope():
            call = Call.get_or_none(Call.uuid == call_uuid)
        if call is None or call.surface == Surface.PUBLIC or call.status != Status.IN_PROGRESS.value:
            return False
        before = self._transferred.pop(call_uuid, None)
        if before is not None:
            self._decided[call_uuid] = (before.target, None)
        else:
            try:  # a restart: the old process's media bug may still be attached
                self.controller.stop_stream(call_uuid)
            except CallError:
                pass  # none was (-ERR Operation Failed), as the call's log shows
        self._log(call_uuid, {"event": "bot_back", "after": "transfer" if before is not None else "reattach"})
        session = self.begin(call_uuid)
        if session is not None:
            session.transcript[:0] = before.transcript if before is not None else transcript(call_uuid)
        return True

    def _forget_transferred(self, call_uuid: str, transition) -> None:
        if transition.to_status in FINAL:
            self._transferred.pop(call_uuid, None)

    # -- StreamOwner: reports from the call's stream ------------------------------------
    def bot_closed(self, stream: CallStream, link: BotLink, event: Closed) -> None:
        session = self.sessions.get(stream.call_uuid)
        if session is None or session.link is not link or session.ended:
            return
        self._log(stream.call_uuid, {"event": "bot_closed", "target": link.label, "code": event.code,
                                     "reason": event.reason[:200], "clean": event.clean})
        if event.clean:
            self._spawn(session.call_uuid, self._bot_ended, session)
        else:
            self._spawn(session.call_uuid, self._bot_failed, session)

    def _bot_ended(self, session: MediaSession) -> None:
        stream = session.stream
        deadline = time.monotonic() + DRAIN_LIMIT
        while not session.ended and not stream.idle() and time.monotonic() < deadline:
            gevent.sleep(0.02)
        if not session.ended:
            self._give_up(session, "bot_ended", cause="NORMAL_CLEARING")

    def _bot_failed(self, session: MediaSession) -> None:
        fallback = self._fallback(session)
        link = self._open(session, fallback) if fallback is not None else None
        if session.ended:
            if link is not None:
                link.close(stop=True)
            return
        if link is None:
            self._give_up(session, "bot_disconnected")
            return
        session.link, session.target = link, fallback
        session.stream.set_bot(link)

    def fs_failed(self, stream: CallStream, reason: str) -> None:
        session = self.sessions.get(stream.call_uuid)
        if session is None or session.ended or session.stream is not stream:
            return
        self._spawn(session.call_uuid, self._fs_failed, session, reason)

    def _fs_failed(self, session: MediaSession, reason: str) -> None:
        # At hangup mod_audio_stream closes its socket just before the call's final
        # events: give the hangup a moment to arrive before calling it a failure (a stop
        # ends the wait: every session is ending).
        if self._stopping.wait(1.0) or session.ended:
            return
        self._log(session.call_uuid, {"event": "stream_failed", "error": reason})
        if not session.stream_restarted:
            session.stream_restarted = True
            try:
                self.controller.stop_stream(session.call_uuid)
            except CallError:
                pass
            session.stream.fs = None
            session.stream.fs_connected.clear()
            if self._start_stream(session):
                self._log(session.call_uuid, {"event": "stream_restarted"})
                if session.stream.fs_connected.wait(self.fs_connect_timeout) or session.ended:
                    return
        self._give_up(session, "media_stream_failed")

    def transcript(self, stream: CallStream, role: str, text: str) -> None:
        session = self.sessions.get(stream.call_uuid)
        if session is not None:
            session.transcript.append({role: text})
        self.controller.log(stream.call_uuid, "transcript", {role: text})

    def transcript_correction(self, stream: CallStream, original: str, corrected: str) -> None:
        """The bot's line ``original`` was cut short: the transcript keeps ``corrected``."""
        session = self.sessions.get(stream.call_uuid)
        if session is not None and not correct_line(session.transcript, original, corrected):
            self._log(stream.call_uuid, {"event": "transcript_correction_unmatched", "original": original[:200]})
            return
        self.controller.log(stream.call_uuid, "transcript", {"bot": corrected, "corrects": original})

    def provider_session(self, stream: CallStream, event) -> None:
        """Remember the provider's id for the call, so that its post-call report
        (``POST /v1/webhooks/call-completed``) finds the call."""
        def register():
            with connection_scope():
                try:
                    register_provider_call(stream.call_uuid, event.session_id, event.provider)
                except IntegrityError:
                    return  # already known (a reconnect to the same conversation)
            self._log(stream.call_uuid, {"event": "provider_session", "provider": event.provider,
                                         "session_id": event.session_id})
        self._spawn(stream.call_uuid, register)

    def log(self, stream: CallStream, detail: dict) -> None:
        self._log(stream.call_uuid, detail)

    # -- ending ---------------------------------------------------------------------------
    def _session_timeout(self, session: MediaSession) -> None:
        if not session.ended:
            self._give_up(session, "session_timeout", cause="NORMAL_CLEARING")

    def _give_up(self, session: MediaSession, reason: str, cause: str | None = None) -> None:
        if session.ended:
            return
        self._hangup(session.call_uuid, cause or self.hangup_cause, reason)

    def _hangup(self, call_uuid: str, cause: str, reason: str) -> None:
        self._log(call_uuid, {"event": "hangup", "reason": reason, "cause": cause})
        try:
            self.controller.hangup(call_uuid, cause)
        except CallError as exc:
            logger.info("call %s: hangup (%s) not sent: %s", call_uuid, reason, exc)

    def _finish(self, session: MediaSession) -> None:
        session.ended = True
        stream = session.stream
        stream.close(stop_bot=True)
        self._log(session.call_uuid, {"event": "media_stats", **stream.stats(),
                                      "bot_audio_dropped": session.link.dropped_audio if session.link else 0})
        if session.transcript and "transcript" in Call._meta.fields:
            with connection_scope():
                Call.update(transcript=session.transcript).where(Call.uuid == session.call_uuid).execute()
        if session.link is not None and type(session.link).final_transcript is not BotLink.final_transcript:
            self._polls.spawn(self._guarded, session.call_uuid, self._provider_transcript, session)

    def _provider_transcript(self, session: MediaSession) -> None:
        """The provider's record of the conversation replaces the socket's lines (Vapi:
        its call artifact, ``connectors.vapi``), when it comes."""
        lines = session.link.final_transcript()
        if lines is None:
            return
        self._log(session.call_uuid, {"event": "provider_transcript", "connector": session.link.kind,
                                      "lines": len(lines)})
        if lines and "transcript" in Call._meta.fields:
            with connection_scope():
                Call.update(transcript=lines).where(Call.uuid == session.call_uuid).execute()

    def stop(self, grace: float = 5.0) -> None:
        """End every session (its bot gets ``stop``), then let the session steps still
        running finish for up to ``grace`` seconds before they are killed. Polls of a
        provider's transcript are killed at once: a poll may last a minute, and a transcript
        not come by the stop is left to the provider's own record."""
        self._stopping.set()
        self._polls.stop(0)
        for session in list(self.sessions.values()):
            session.ended = True
            session.stream.close(stop_bot=True)
        self.sessions.clear()
        self._greenlets.stop(grace)

    def _log(self, call_uuid: str, detail: dict) -> None:
        self.controller.log(call_uuid, "media", detail)
