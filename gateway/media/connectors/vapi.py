"""Vapi over its WebSocket transport.

Protocol (research/media-protocols.md §4, Vapi docs "WebSocket transport" and its SDK):

* ``POST {base}/call`` with ``Authorization: Bearer <private key>`` and
  ``{"assistantId": …, "transport": {"provider": "vapi.websocket", "audioFormat":
  {"format": "mulaw", "container": "raw", "sampleRate": 8000}}}`` (plus
  ``assistantOverrides.variableValues`` from the call's custom args); the answer's
  ``transport.websocketCallUrl`` is the socket (``/transport`` is appended if missing);
* binary frames carry raw mu-law both ways; text frames are JSON control messages.
  ``user-interrupted`` means barge-in (clear); final ``transcript`` messages go to the
  call's transcript; ``{"type": "hangup"}`` goes before our close.

The JSON schema on the transport socket is not published; unknown messages are ignored.
DTMF has no message on this socket and is not forwarded (logged once).
"""

from __future__ import annotations

import logging

import requests

from gateway.media.connectors.base import BotLink, BotUnavailable, CallInfo, WsChannel, redact
from gateway.media.twilio import Clear, Media, ProtocolIssue, ProviderSession, Transcript, json_object

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.vapi.ai"
AUDIO_FORMAT = {"format": "mulaw", "container": "raw", "sampleRate": 8000}


def create_call(base: str, api_key: str, assistant_id: str, call: CallInfo, timeout: float) -> dict:
    body: dict = {"assistantId": assistant_id,
                  "transport": {"provider": "vapi.websocket", "audioFormat": dict(AUDIO_FORMAT)}}
    variables = {str(k): v for k, v in call.custom_args.items()}
    if variables:
        body["assistantOverrides"] = {"variableValues": variables}
    try:
        reply = requests.post(f"{base.rstrip('/')}/call", json=body, timeout=timeout,
                              headers={"Authorization": f"Bearer {api_key}"})
    except requests.RequestException as exc:
        raise BotUnavailable(f"Vapi API unreachable: {type(exc).__name__}") from None
    if reply.status_code not in (200, 201):
        # The call log gets the status only, never the answer's body.
        logger.info("Vapi API answered HTTP %s: %s", reply.status_code, reply.text[:200])
        raise BotUnavailable(f"Vapi API answered HTTP {reply.status_code}")
    try:
        data = reply.json()
        url = data["transport"]["websocketCallUrl"]
    except (ValueError, KeyError, TypeError):
        raise BotUnavailable("Vapi API answer has no transport.websocketCallUrl") from None
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise BotUnavailable("Vapi websocketCallUrl is not a ws(s) URL")
    return data


class VapiLink(BotLink):
    kind = "vapi"

    def __init__(self, assistant_id: str, call: CallInfo, *, api_key: str | None, base_url: str = DEFAULT_URL,
                 connect_timeout: float = 3.0) -> None:
        super().__init__(f"vapi assistant {assistant_id}")
        if not assistant_id:
            raise BotUnavailable("no Vapi assistant id")
        if not api_key:
            raise BotUnavailable("the account has no Vapi API key")
        data = create_call(base_url, api_key, assistant_id, call, connect_timeout)
        self.vapi_call_id = data.get("id")
        url = data["transport"]["websocketCallUrl"]
        if not url.rstrip("/").endswith("/transport"):
            url = url.rstrip("/") + "/transport"
        self.label = f"vapi assistant {assistant_id} ({redact(url)})"
        self.channel = WsChannel(url, connect_timeout=connect_timeout)
        self._dtmf_warned = False

    def start(self, on_event) -> None:
        super().start(on_event)
        if isinstance(self.vapi_call_id, str) and self.vapi_call_id:
            on_event(ProviderSession("vapi", self.vapi_call_id))

    def _events(self, kind: str, data: str | bytes) -> list:
        if kind == "binary":  # Vapi's transport sends the assistant's audio as raw frames
            return [Media(data)] if data else []
        return self._handle(data)

    def _handle(self, text: str) -> list:
        msg = json_object(text)
        if isinstance(msg, ProtocolIssue):
            return [msg]
        kind = msg.get("type")
        if kind == "user-interrupted":
            return [Clear()]
        if kind == "transcript" and msg.get("transcriptType", "final") == "final":
            words = msg.get("transcript")
            role = "user" if msg.get("role") == "user" else "bot"
            return [Transcript(role, words)] if isinstance(words, str) and words else []
        return []

    def _send(self, kind: str, value) -> None:
        if kind == "audio":
            self.channel.send_binary(value)
        elif kind == "dtmf" and not self._dtmf_warned:
            self._dtmf_warned = True
            self._emit(ProtocolIssue("DTMF is not forwarded to Vapi (no message for it on the transport)"))

    def _goodbye(self, stop: bool) -> None:
        try:
            self.channel.send_text('{"type":"hangup"}')
        except Exception:
            pass
        self.channel.close(1000)

    def _abort(self) -> None:
        self.channel.shutdown()
