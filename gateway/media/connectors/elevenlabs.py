"""ElevenLabs Agents (Conversational AI) over its WebSocket, as ElevenLabs documents it.

Facts used, with their sources (docs/connectors.md has the longer account).  The pages
are ElevenLabs' docs (elevenlabs/elevenlabs-docs, ``fern/conversational-ai/pages/``:
``api-reference/websocket.mdx``, ``customization/authentication.mdx``,
``customization/client-events.mdx``) and the official SDK, the ``elevenlabs`` package
(``conversational_ai/conversation.py``, ``types/``):

* **Authentication** (authentication.mdx; the SDK's ``Conversation.start_session`` and
  ``conversations.get_signed_url``): a *private* agent is
  reached through a signed URL, fetched over HTTPS with the account's API key,
  ``GET {api}/v1/convai/conversation/get-signed-url?agent_id=<id>`` with header
  ``xi-api-key`` (the SDK's spelling; older pages write ``get_signed_url``), answered
  ``{"signed_url": "wss://…?agent_id=…&conversation_signature=…"}``, valid 15 minutes
  for opening one conversation; the WebSocket then goes to that URL *without* the key.  A *public* agent (no key
  configured) is reached directly at ``{api}/v1/convai/conversation?agent_id=<id>``.  One
  base URL serves both: ``https``/``wss`` (``http``/``ws`` for a local stand-in) of the
  same host, whichever the setting names.
* **Opening** (asyncapi ``conversation_initiation_client_data``; the SDK sends it first):
  ``dynamic_variables`` (the call's custom args, and ``call_uuid``, ``caller_number``,
  ``called_number``) and, when the builder gives one, ``conversation_config_override``
  in the documented shape ``{"agent": {"prompt": {"prompt"}, "first_message",
  "language"}, "tts": {"voice_id"}}`` (``config_override`` builds it; the agent's
  security settings must allow each override).
* **Audio formats** (asyncapi ``conversation_initiation_metadata``; the SDK's
  ``AudioFormatEnum``): the server's first message names ``user_input_audio_format`` and
  ``agent_output_audio_format``, each one of ``FORMATS``; an agent's default is
  ``pcm_16000``, so a missing field means that.  ``ulaw_8000`` passes through untouched
  (ElevenLabs' own Twilio guide configures agents so), every ``pcm_<rate>`` is 16-bit
  little-endian PCM, transcoded here (``gateway.media.codec``).  Caller audio that
  arrives before the formats are known is *buffered*, at most ``MAX_EARLY_AUDIO`` frames
  (1 s; older frames are dropped and counted), and sent once they are.  Any other format
  ends the link with the reason in the call's log.
* **Caller audio**: ``{"user_audio_chunk": "<base64>"}``, a bare key without ``type``.
* **From the agent**: ``audio`` -> playback; ``interruption`` -> clear, and later audio
  whose ``event_id`` is not newer is dropped (the SDK's rule); ``user_transcript`` and
  ``agent_response`` -> the transcript; ``agent_response_correction`` (fields
  ``original_agent_response``, ``corrected_agent_response``: what the caller heard of a
  response the caller cut short) -> the transcript's line replaced.
* **Ping** (client-events.mdx: "requiring immediate response"): ``{"type": "pong",
  "event_id": <same>}``, sent ahead of queued caller audio (``BotLink._queue(urgent=True)``)
  so a backlog cannot delay it.  ``ping_event.ping_ms`` is optional, the server's
  estimate of the latency (the SDK hands it to a latency callback and answers at once):
  nothing to wait for, so the pong goes at once.
* **Client tools** (client-events.mdx ``client_tool_call`` / ``client_tool_result``; the
  SDK's ``ClientTools.execute_tool``): a call ``{"tool_name", "tool_call_id", "parameters"}`` is
  run by the builder's ``run_tool(name, parameters) -> (text, is_error)`` in a greenlet
  of its own (audio keeps flowing), within ``TOOL_TIMEOUT`` seconds, and answered
  ``{"type": "client_tool_result", "tool_call_id", "result", "is_error"}``.  With no
  runner, a tool it does not know (it raises ``LookupError``), a failure or a timeout, the
  answer is ``is_error: true`` with a sentence saying which.  Each call and its result is
  written to the call's log (``tool_call``).
* **End**: the server closes with 1000 when the agent's ``end_call`` tool runs.

DTMF has no documented client message: a key press is sent as a ``contextual_update``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections import deque
from typing import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import gevent
import requests

from gateway.media import codec
from gateway.media.connectors.base import BotLink, BotUnavailable, CallInfo, WsChannel, redact
from gateway.media.twilio import (
    Clear, LogNote, Media, ProtocolIssue, ProviderSession, Transcript, TranscriptCorrection, json_object,
)

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.elevenlabs.io"
CONVERSATION_PATH = "/v1/convai/conversation"
SIGNED_URL_PATH = "/v1/convai/conversation/get-signed-url"
#: Every audio format an agent may name, with its sample rate (``ulaw_8000`` is G.711
#: mu-law, the others 16-bit little-endian PCM).
FORMATS = {"ulaw_8000": 8000, "pcm_8000": 8000, "pcm_16000": 16000, "pcm_22050": 22050, "pcm_24000": 24000,
           "pcm_44100": 44100, "pcm_48000": 48000}
DEFAULT_FORMAT = "pcm_16000"
MAX_EARLY_AUDIO = 50  # 20 ms frames kept until the agent's formats are known: 1 s
TOOL_TIMEOUT = 10.0  # seconds a client tool may take before it is answered as failed
MAX_RUNNING_TOOLS = 8  # tool calls of one conversation running at once; more are refused
MAX_LOGGED_TEXT = 500  # characters of a tool's parameters and result kept in the call's log

#: ``run_tool(tool_name, parameters) -> (result text, is_error)``; raises ``LookupError``
#: for a tool it does not know.
RunTool = Callable[[str, dict], "tuple[str, bool]"]

#: The parts of ``conversation_config_override`` the gateway sets (ElevenLabs' shape).
OVERRIDE_SHAPE = {"agent": {"prompt": {"prompt": str, "llm": str}, "first_message": str, "language": str},
                  "tts": {"voice_id": str}}


def config_override(*, prompt: str | None = None, first_message: str | None = None, language: str | None = None,
                    voice_id: str | None = None) -> dict:
    """``conversation_config_override`` in ElevenLabs' documented shape, with what is given."""
    agent: dict = {}
    if prompt is not None:
        agent["prompt"] = {"prompt": prompt}
    if first_message is not None:
        agent["first_message"] = first_message
    if language is not None:
        agent["language"] = language
    override: dict = {}
    if agent:
        override["agent"] = agent
    if voice_id is not None:
        override["tts"] = {"voice_id": voice_id}
    return override


def check_override(value: dict, shape: dict = OVERRIDE_SHAPE, at: str = "conversation_config_override") -> None:
    """``ValueError`` unless ``value`` holds only the documented keys, each of its type."""
    if not isinstance(value, dict):
        raise ValueError(f"{at} must be an object")
    for key, item in value.items():
        if key not in shape:
            raise ValueError(f"{at}.{key} is not an override the gateway sets")
        if isinstance(shape[key], dict):
            check_override(item, shape[key], f"{at}.{key}")
        elif not isinstance(item, shape[key]):
            raise ValueError(f"{at}.{key} must be a string")


def endpoints(base: str) -> tuple[str, str]:
    """The HTTP(S) API base and the WebSocket base for one configured base URL."""
    parts = urlsplit(base.rstrip("/"))
    secure = parts.scheme in ("https", "wss")
    http = urlunsplit(("https" if secure else "http", parts.netloc, parts.path, "", ""))
    ws = urlunsplit(("wss" if secure else "ws", parts.netloc, parts.path, "", ""))
    return http, ws


def conversation_url(base: str, agent_id: str) -> str:
    """A public agent's conversation URL."""
    return f"{endpoints(base)[1]}{CONVERSATION_PATH}?agent_id={quote(agent_id, safe='')}"


def signed_url(base: str, api_key: str, agent_id: str, timeout: float) -> str:
    """Ask ElevenLabs for a private agent's signed conversation URL; ``BotUnavailable``
    with a reason fit for the call's log (never the key, nor the answer's body)."""
    url = f"{endpoints(base)[0]}{SIGNED_URL_PATH}"
    try:
        reply = requests.get(url, params={"agent_id": agent_id}, headers={"xi-api-key": api_key},
                             timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise BotUnavailable("ElevenLabs API unreachable: timed out") from None
    except requests.RequestException as exc:
        raise BotUnavailable(f"ElevenLabs API unreachable: {type(exc).__name__}") from None
    if reply.status_code != 200:
        logger.info("ElevenLabs get-signed-url answered HTTP %s: %s", reply.status_code, reply.text[:200])
        meaning = {401: "the API key was refused", 403: "the API key may not use this agent",
                   404: "no such agent", 422: "the agent id was refused"}.get(reply.status_code)
        raise BotUnavailable(f"ElevenLabs API answered HTTP {reply.status_code}"
                             + (f" ({meaning})" if meaning else ""))
    try:
        found = reply.json()["signed_url"]
    except (ValueError, KeyError, TypeError):
        raise BotUnavailable("ElevenLabs API answer has no signed_url") from None
    if not isinstance(found, str) or not found.startswith(("ws://", "wss://")):
        raise BotUnavailable("ElevenLabs signed_url is not a ws(s) URL")
    return found


class _Transcoder:
    """Caller mu-law to the agent's input format, and its output format to mu-law."""

    def __init__(self, input_format: str, output_format: str) -> None:
        self.input_format, self.output_format = input_format, output_format
        in_rate, out_rate = FORMATS[input_format], FORMATS[output_format]
        self._up = codec.Resampler(8000, in_rate) if in_rate != 8000 else None
        self._down = codec.Resampler(out_rate, 8000) if out_rate != 8000 else None
        self._odd = b""  # a PCM sample split between two audio events

    def to_agent(self, ulaw: bytes) -> bytes:
        if self.input_format == "ulaw_8000":
            return ulaw
        pcm = codec.ulaw_to_l16(ulaw)
        return self._up.process(pcm) if self._up is not None else pcm

    def to_caller(self, audio: bytes) -> bytes:
        if self.output_format == "ulaw_8000":
            return audio
        audio, self._odd = self._odd + audio, b""
        if len(audio) & 1:
            audio, self._odd = audio[:-1], audio[-1:]
        pcm = self._down.process(audio) if self._down is not None else audio
        return codec.l16_to_ulaw(pcm)


class ElevenLabsLink(BotLink):
    """One conversation with an ElevenLabs agent; see the module docstring.

    ``api_key`` (the account's, or None for a public agent), ``run_tool`` (the agent's
    client tools) and ``config_override`` (``conversation_config_override``) are the
    builder's."""

    kind = "elevenlabs"

    def __init__(self, agent_id: str, call: CallInfo, *, api_key: str | None = None, base_url: str = DEFAULT_URL,
                 connect_timeout: float = 3.0, run_tool: RunTool | None = None,
                 config_override: dict | None = None) -> None:
        super().__init__(f"elevenlabs agent {agent_id}")
        if not agent_id:
            raise BotUnavailable("no ElevenLabs agent id")
        if config_override:
            check_override(config_override)
        started = time.monotonic()
        if api_key:
            url = signed_url(base_url, api_key, agent_id, connect_timeout)
        else:
            url = conversation_url(base_url, agent_id)
        self.label = f"elevenlabs agent {agent_id} ({redact(url)})"
        self.channel = WsChannel(url, connect_timeout=max(0.5, connect_timeout - (time.monotonic() - started)))
        self.run_tool = run_tool
        self.conversation_id: str | None = None
        self.transcoder: _Transcoder | None = None  # once the agent's formats are known
        self._early: deque = deque()
        self._last_interrupt = -1
        self._running_tools = 0
        variables = {str(k): v for k, v in call.custom_args.items() if isinstance(v, (str, int, float, bool))}
        variables.setdefault("call_uuid", call.call_uuid)
        if call.from_number:
            variables.setdefault("caller_number", call.from_number)
        if call.to_number:
            variables.setdefault("called_number", call.to_number)
        opening: dict = {"type": "conversation_initiation_client_data", "dynamic_variables": variables}
        if config_override:
            opening["conversation_config_override"] = config_override
        self.channel.send_text(_dumps(opening))

    # -- session side -------------------------------------------------------------------
    def send_audio(self, ulaw: bytes) -> None:
        if self.transcoder is not None:
            super().send_audio(ulaw)
            return
        if self.closed:
            return
        if len(self._early) >= MAX_EARLY_AUDIO:
            dropped = self._early.popleft()
            self.dropped_audio += 1
            self.dropped_audio_bytes += len(dropped)
        self._early.append(ulaw)

    # -- from ElevenLabs ----------------------------------------------------------------
    def _events(self, kind: str, data: str | bytes) -> list:
        if kind == "binary":
            return [ProtocolIssue("binary frame from ElevenLabs")]
        msg = json_object(data)
        if isinstance(msg, ProtocolIssue):
            return [msg]
        event = msg.get("type")
        body = msg.get(f"{event}_event") if isinstance(event, str) else None
        body = body if isinstance(body, dict) else {}
        if event == "audio":
            return self._audio(body, data)
        if event == "interruption":
            event_id = body.get("event_id")
            if isinstance(event_id, int):
                self._last_interrupt = max(self._last_interrupt, event_id)
            return [Clear()]
        if event == "ping":
            event_id = body.get("event_id")
            if not isinstance(event_id, int) or isinstance(event_id, bool):
                return [ProtocolIssue("ping without an integer event_id", data[:120])]
            self._queue(("pong", event_id), urgent=True)
            return []
        if event == "user_transcript":
            heard = msg.get("user_transcription_event")
            text = heard.get("user_transcript") if isinstance(heard, dict) else None
            return [Transcript("user", text.strip())] if isinstance(text, str) and text.strip() else []
        if event == "agent_response":
            text = body.get("agent_response")
            return [Transcript("bot", text.strip())] if isinstance(text, str) and text.strip() else []
        if event == "agent_response_correction":
            original, corrected = body.get("original_agent_response"), body.get("corrected_agent_response")
            if not isinstance(original, str) or not isinstance(corrected, str):
                return [ProtocolIssue("agent_response_correction without its two responses", data[:120])]
            return [TranscriptCorrection(original.strip(), corrected.strip())]
        if event == "client_tool_call":
            return self._tool_call(msg.get("client_tool_call"), data)
        if event == "conversation_initiation_metadata":
            return self._metadata(body)
        if event is None:
            return [ProtocolIssue("message without a type", data[:120])]
        return []  # vad_score, tentative responses, metadata of turns…: not the bridge's business

    def _audio(self, body: dict, text: str) -> list:
        event_id = body.get("event_id")
        if isinstance(event_id, int) and event_id <= self._last_interrupt:
            return []  # audio of an interrupted turn
        if self.transcoder is None:
            return [ProtocolIssue("audio before conversation_initiation_metadata", text[:120])]
        encoded = body.get("audio_base_64")
        if not isinstance(encoded, str):
            return [ProtocolIssue("audio_event.audio_base_64 is not a string", text[:120])]
        try:
            audio = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return [ProtocolIssue("audio_event.audio_base_64 is not base64", text[:120])]
        audio = self.transcoder.to_caller(audio)
        return [Media(audio)] if audio else []

    def _metadata(self, body: dict) -> list:
        if self.transcoder is not None:
            return [ProtocolIssue("a second conversation_initiation_metadata")]
        input_format = body.get("user_input_audio_format") or DEFAULT_FORMAT
        output_format = body.get("agent_output_audio_format") or DEFAULT_FORMAT
        for name, fmt in (("input", input_format), ("output", output_format)):
            if not isinstance(fmt, str) or fmt not in FORMATS:
                self._end(f"the ElevenLabs agent's {name} audio format {str(fmt)[:40]!r} is not supported "
                          f"(one of {', '.join(FORMATS)})")
                return []
        self.transcoder = _Transcoder(input_format, output_format)
        early, self._early = self._early, deque()
        for frame in early:
            super().send_audio(frame)
        conversation_id = body.get("conversation_id")
        if isinstance(conversation_id, str) and conversation_id:
            self.conversation_id = conversation_id
            return [ProviderSession("elevenlabs", conversation_id)]
        return []

    # -- client tools -------------------------------------------------------------------
    def _tool_call(self, call, text: str) -> list:
        call = call if isinstance(call, dict) else {}
        call_id, name, parameters = call.get("tool_call_id"), call.get("tool_name"), call.get("parameters", {})
        if not isinstance(call_id, str) or not call_id:
            return [ProtocolIssue("client_tool_call without a tool_call_id", text[:120])]
        if not isinstance(name, str) or not name:
            self._tool_result(call_id, "", "the tool call has no tool_name", True, 0.0)
            return []
        if not isinstance(parameters, dict):
            self._tool_result(call_id, name, "the tool call's parameters are not an object", True, 0.0)
            return []
        if self.run_tool is None:
            self._tool_result(call_id, name, f"no client tools are available on this line (asked for "
                                             f"{_shown(name)})", True, 0.0, parameters)
            return []
        if self._running_tools >= MAX_RUNNING_TOOLS:
            self._tool_result(call_id, name, f"too many tool calls at once (at most {MAX_RUNNING_TOOLS})", True,
                              0.0, parameters)
            return []
        self._running_tools += 1
        self._greenlets.append(gevent.spawn(self._run_tool, call_id, name, parameters))
        return []

    def _run_tool(self, call_id: str, name: str, parameters: dict) -> None:
        started = time.monotonic()
        try:
            with gevent.Timeout(TOOL_TIMEOUT):
                answer = self.run_tool(name, parameters)
            result, is_error = answer
            if not isinstance(result, str) or not isinstance(is_error, bool):
                raise TypeError("run_tool must return (str, bool)")
        except gevent.Timeout:
            result, is_error = f"the tool {_shown(name)} did not answer within {TOOL_TIMEOUT:g} s", True
        except LookupError:
            result, is_error = f"unknown tool {_shown(name)}", True
        except Exception:
            logger.exception("%s: tool %s failed", self.label, _shown(name))
            result, is_error = f"the tool {_shown(name)} failed", True
        finally:
            self._running_tools -= 1
        self._tool_result(call_id, name, result, is_error, time.monotonic() - started, parameters)

    def _tool_result(self, call_id: str, name: str, result: str, is_error: bool, seconds: float,
                     parameters: dict | None = None) -> None:
        self._queue(("tool_result", {"type": "client_tool_result", "tool_call_id": call_id, "result": result,
                                     "is_error": is_error}), urgent=True)
        self._emit(LogNote({"event": "tool_call", "tool": name[:200], "tool_call_id": call_id[:200],
                            "parameters": _shortened(parameters or {}), "result": result[:MAX_LOGGED_TEXT],
                            "is_error": is_error, "ms": round(seconds * 1000, 1)}))

    # -- to ElevenLabs ------------------------------------------------------------------
    def _send(self, kind: str, value) -> None:
        if kind == "audio":
            chunk = self.transcoder.to_agent(value)
            self.channel.send_text('{"user_audio_chunk":"%s"}' % base64.b64encode(chunk).decode("ascii"))
        elif kind == "pong":
            self.channel.send_text(_dumps({"type": "pong", "event_id": value}))
        elif kind == "tool_result":
            self.channel.send_text(_dumps(value))
        elif kind == "dtmf":
            self.channel.send_text(_dumps({"type": "contextual_update", "text": f"The caller pressed the key {value}"}))

    def _goodbye(self, stop: bool) -> None:
        self.channel.close(1000)

    def _abort(self) -> None:
        self.channel.shutdown()


def _dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _shown(name: str) -> str:
    """A tool's name in a sentence: quoted, cut short (it is the agent's text)."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _shortened(parameters: dict):
    """A tool's parameters for the call's log: as they are, or their JSON cut short."""
    text = _dumps(parameters)
    return parameters if len(text) <= MAX_LOGGED_TEXT else text[:MAX_LOGGED_TEXT] + "…"
