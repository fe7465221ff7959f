"""ElevenLabs Conversational AI ("Agents") over its WebSocket.

Protocol (research/media-protocols.md §3, from ElevenLabs' asyncapi and Python SDK):

* connect ``{base}/v1/convai/conversation?agent_id=<id>`` with ``xi-api-key`` (the
  account's key; public agents need none), then send
  ``conversation_initiation_client_data`` (the call's custom args as ``dynamic_variables``);
* the server answers ``conversation_initiation_metadata`` with the agent's audio formats.
  ``ulaw_8000`` both ways needs no transcoding (the official Twilio bridge does exactly
  that); ``pcm_8000``/``pcm_16000`` are transcoded here; anything else is logged;
* caller audio: ``{"user_audio_chunk": "<base64>"}`` (a bare key, no ``type``), 20 ms each;
* ``audio`` -> playback; ``interruption`` -> clear, and audio whose ``event_id`` is not
  newer than the interruption is dropped (the SDK's rule); ``ping`` -> ``pong`` with the
  same ``event_id`` at once; ``user_transcript`` / ``agent_response`` -> the transcript;
* the conversation ends with a close frame 1000 (the agent's ``end_call`` tool).

DTMF has no documented client message: a key press is sent as a ``contextual_update``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from urllib.parse import quote

from gateway.media import codec
from gateway.media.connectors.base import BotLink, BotUnavailable, CallInfo, WsChannel
from gateway.media.twilio import Clear, Media, ProtocolIssue, ProviderSession, Transcript, json_object

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.elevenlabs.io"
_PCM_RATES = {"pcm_8000": 8000, "pcm_16000": 16000}


def conversation_url(base: str, agent_id: str) -> str:
    return f"{base.rstrip('/')}/v1/convai/conversation?agent_id={quote(agent_id, safe='')}"


class ElevenLabsLink(BotLink):
    kind = "elevenlabs"

    def __init__(self, agent_id: str, call: CallInfo, *, api_key: str | None = None, base_url: str = DEFAULT_URL,
                 connect_timeout: float = 3.0) -> None:
        super().__init__(f"elevenlabs agent {agent_id}")
        if not agent_id:
            raise BotUnavailable("no ElevenLabs agent id")
        headers = [f"xi-api-key: {api_key}"] if api_key else []
        self.channel = WsChannel(conversation_url(base_url, agent_id), headers=headers,
                                 connect_timeout=connect_timeout)
        self.conversation_id: str | None = None
        self.input_format = "ulaw_8000"
        self.output_format = "ulaw_8000"
        self._last_interrupt = -1
        self._up = None  # 8k -> 16k resampler for pcm_16000 input
        self._down = None  # 16k -> 8k for pcm_16000 output
        variables = {str(k): v for k, v in call.custom_args.items()
                     if isinstance(v, (str, int, float, bool)) and not isinstance(v, dict)}
        variables.setdefault("call_uuid", call.call_uuid)
        if call.from_number:
            variables.setdefault("caller_number", call.from_number)
        if call.to_number:
            variables.setdefault("called_number", call.to_number)
        self.channel.send_text(json.dumps({"type": "conversation_initiation_client_data",
                                           "dynamic_variables": variables}, separators=(",", ":")))

    # -- from ElevenLabs ----------------------------------------------------------------
    def _events(self, kind: str, data: str | bytes) -> list:
        if kind == "binary":
            return [ProtocolIssue("binary frame from ElevenLabs")]
        return self._handle(data)

    def _handle(self, text: str) -> list:
        msg = json_object(text)
        if isinstance(msg, ProtocolIssue):
            return [msg]
        kind = msg.get("type")
        body = msg.get(f"{kind}_event") if isinstance(kind, str) else None
        body = body if isinstance(body, dict) else {}
        if kind == "audio":
            event_id = body.get("event_id")
            if isinstance(event_id, int) and event_id <= self._last_interrupt:
                return []  # audio of an interrupted turn
            try:
                audio = base64.b64decode(body.get("audio_base_64") or "", validate=True)
            except (binascii.Error, ValueError):
                return [ProtocolIssue("audio_event.audio_base_64 is not base64", text[:120])]
            audio = self._to_ulaw(audio)
            return [Media(audio)] if audio else []
        if kind == "interruption":
            event_id = body.get("event_id")
            if isinstance(event_id, int):
                self._last_interrupt = max(self._last_interrupt, event_id)
            return [Clear()]
        if kind == "ping":
            self._queue(("pong", body.get("event_id")))
            return []
        if kind == "user_transcript":
            event = msg.get("user_transcription_event")
            text_ = event.get("user_transcript") if isinstance(event, dict) else None
            return [Transcript("user", text_)] if isinstance(text_, str) and text_ else []
        if kind == "agent_response":
            text_ = body.get("agent_response")
            return [Transcript("bot", text_)] if isinstance(text_, str) and text_ else []
        if kind == "conversation_initiation_metadata":
            self.conversation_id = body.get("conversation_id")
            self.input_format = body.get("user_input_audio_format") or self.input_format
            self.output_format = body.get("agent_output_audio_format") or self.output_format
            issues = []
            for fmt in (self.input_format, self.output_format):
                if fmt != "ulaw_8000" and fmt not in _PCM_RATES:
                    issues.append(ProtocolIssue(f"unsupported audio format {fmt!r}; set ulaw_8000 on the agent"))
            if self.input_format == "pcm_16000":
                self._up = codec.Resampler(8000, 16000)
            if self.output_format == "pcm_16000":
                self._down = codec.Resampler(16000, 8000)
            if isinstance(self.conversation_id, str) and self.conversation_id:
                issues.append(ProviderSession("elevenlabs", self.conversation_id))
            return issues
        if kind is None:
            return [ProtocolIssue("message without a type", text[:120])]
        return []  # vad_score, tentative responses, tool calls…: not the bridge's business

    def _to_ulaw(self, audio: bytes) -> bytes:
        if self.output_format == "ulaw_8000":
            return audio
        if self.output_format == "pcm_16000" and self._down is not None:
            return codec.l16_to_ulaw(self._down.process(audio))
        if self.output_format == "pcm_8000":
            return codec.l16_to_ulaw(audio)
        return b""

    # -- to ElevenLabs ------------------------------------------------------------------
    def _send(self, kind: str, value) -> None:
        if kind == "audio":
            if self.input_format == "pcm_16000" and self._up is not None:
                value = self._up.process(codec.ulaw_to_l16(value))
            elif self.input_format == "pcm_8000":
                value = codec.ulaw_to_l16(value)
            self.channel.send_text('{"user_audio_chunk":"%s"}' % base64.b64encode(value).decode("ascii"))
        elif kind == "pong":
            self.channel.send_text(json.dumps({"type": "pong", "event_id": value}, separators=(",", ":")))
        elif kind == "dtmf":
            self.channel.send_text(json.dumps({"type": "contextual_update",
                                               "text": f"The caller pressed the key {value}"}))

    def _goodbye(self, stop: bool) -> None:
        self.channel.close(1000)

    def _abort(self) -> None:
        self.channel.shutdown()
