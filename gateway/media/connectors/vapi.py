"""Vapi over its WebSocket transport, relying on what Vapi documents.

Documented (Vapi docs "WebSocket Transport", docs.vapi.ai/calls/websocket-transport; the
``vapi_server_sdk`` package's ``calls.create`` and ``types``; docs/connectors.md):

* ``POST {base}/call`` with ``Authorization: Bearer <private key>`` and
  ``{"assistantId": …, "transport": {"provider": "vapi.websocket", "audioFormat":
  {"format": "mulaw", "container": "raw", "sampleRate": 8000}}, "assistantOverrides":
  {"metadata": {"call_uuid", "from_number", "to_number"}, "variableValues": <custom
  args>}}``.  The call creation has no metadata of its own: ``assistantOverrides.metadata``
  is where Vapi stores a call's metadata (and repeats it in its server messages), so a
  report Vapi sends anywhere names the gateway's call.  No ``phoneNumber`` may go with
  this transport.  The answer (201) is the call, with ``id`` and
  ``transport.websocketCallUrl``;
* on that socket, binary frames carry the audio in the configured format both ways
  (mu-law 8 kHz here, no transcoding), text frames are JSON control messages; the one
  documented client message is ``{"type": "hangup"}``, sent before our close;
* the transcript: Vapi's documented record of a call is its end-of-call report, a
  *server message* that goes to the assistant's server URL (not to this socket), whose
  ``artifact`` is also the call's ``artifact`` on ``GET {base}/call/{id}`` once the call
  has ended and Vapi's post-processing is done.  ``final_transcript`` reads it from
  there, so the gateway needs no public webhook address; its ``artifact.messages``
  (``role`` ``user`` / ``bot``, ``message``) become the call's transcript.

Best effort, not documented for this transport: Vapi does not publish which JSON
messages its transport socket sends.  They appear to be the assistant's
``clientMessages`` (whose types the SDK has): ``user-interrupted`` is taken as barge-in
(clear the caller's queued audio) and final ``transcript`` messages as transcript lines
while the call lasts, both ignored if Vapi sends neither.  Unknown messages are ignored.
DTMF has no message on this socket and is not forwarded (logged once).
"""

from __future__ import annotations

import logging
import time

import gevent
import requests

from gateway.media.connectors.base import BotLink, BotUnavailable, CallInfo, WsChannel, redact
from gateway.media.twilio import Clear, Media, ProtocolIssue, ProviderSession, Transcript, json_object

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.vapi.ai"
AUDIO_FORMAT = {"format": "mulaw", "container": "raw", "sampleRate": 8000}
REPORT_WAIT = 60.0  # seconds after the call that Vapi's post-call artifact is waited for
REPORT_POLL = (1.0, 8.0)  # first and longest pause between two reads of the call
MAX_TRANSCRIPT_LINES = 2000
#: ``artifact.messages`` roles → the transcript's speakers (system and tool messages are left out).
SPEAKERS = {"user": "user", "bot": "bot", "assistant": "bot"}


def call_body(assistant_id: str, call: CallInfo) -> dict:
    """The ``POST /call`` body for one of our calls."""
    overrides: dict = {"metadata": {"call_uuid": call.call_uuid, "from_number": call.from_number,
                                    "to_number": call.to_number}}
    variables = {str(k): v for k, v in call.custom_args.items()}
    if variables:
        overrides["variableValues"] = variables
    return {"assistantId": assistant_id,
            "transport": {"provider": "vapi.websocket", "audioFormat": dict(AUDIO_FORMAT)},
            "assistantOverrides": overrides}


def create_call(base: str, api_key: str, assistant_id: str, call: CallInfo, timeout: float) -> dict:
    try:
        reply = requests.post(f"{base.rstrip('/')}/call", json=call_body(assistant_id, call), timeout=timeout,
                              headers={"Authorization": f"Bearer {api_key}"}, allow_redirects=False)
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


def artifact_transcript(call_object) -> list[dict] | None:
    """The transcript in an ended Vapi call's ``artifact.messages``; None while the call
    has not ended or its artifact is not there yet."""
    if not isinstance(call_object, dict) or call_object.get("status") != "ended":
        return None
    artifact = call_object.get("artifact")
    messages = artifact.get("messages") if isinstance(artifact, dict) else None
    if not isinstance(messages, list):
        return None
    lines = []
    for message in messages[:MAX_TRANSCRIPT_LINES]:
        if not isinstance(message, dict):
            continue
        role, text = message.get("role"), message.get("message")
        speaker = SPEAKERS.get(role) if isinstance(role, str) else None
        if speaker and isinstance(text, str) and text.strip():
            lines.append({speaker: text.strip()})
    return lines


class VapiLink(BotLink):
    kind = "vapi"

    def __init__(self, assistant_id: str, call: CallInfo, *, api_key: str | None, base_url: str = DEFAULT_URL,
                 connect_timeout: float = 3.0) -> None:
        super().__init__(f"vapi assistant {assistant_id}")
        if not assistant_id:
            raise BotUnavailable("no Vapi assistant id")
        if not api_key:
            raise BotUnavailable("the account has no Vapi API key")
        self._api_key, self._base = api_key, base_url.rstrip("/")
        data = create_call(base_url, api_key, assistant_id, call, connect_timeout)
        call_id = data.get("id")
        self.vapi_call_id = call_id if isinstance(call_id, str) and call_id else None
        url = data["transport"]["websocketCallUrl"]
        if not url.rstrip("/").endswith("/transport"):  # seen in third-party bridges, not in Vapi's docs
            url = url.rstrip("/") + "/transport"
        self.label = f"vapi assistant {assistant_id} ({redact(url)})"
        self.channel = WsChannel(url, connect_timeout=connect_timeout)
        self._dtmf_warned = False

    def start(self, on_event) -> None:
        super().start(on_event)
        if self.vapi_call_id:
            on_event(ProviderSession("vapi", self.vapi_call_id))

    def final_transcript(self, wait: float = REPORT_WAIT) -> list[dict] | None:
        """The call's transcript from Vapi's record of it (``artifact_transcript``), read
        from ``GET /call/{id}`` until the call has ended and its artifact is there, for up
        to ``wait`` seconds; None if it is not (the socket's lines are kept then)."""
        if not self.vapi_call_id:
            return None
        deadline = time.monotonic() + wait
        pause = REPORT_POLL[0]
        while True:
            try:
                reply = requests.get(f"{self._base}/call/{self.vapi_call_id}", timeout=5.0, allow_redirects=False,
                                     headers={"Authorization": f"Bearer {self._api_key}"})
            except requests.RequestException as exc:
                logger.info("%s: reading the call from Vapi failed: %s", self.label, type(exc).__name__)
                reply = None
            if reply is not None and reply.status_code in (401, 403, 404):
                logger.info("%s: Vapi answered HTTP %s for the call", self.label, reply.status_code)
                return None
            if reply is not None and reply.status_code == 200:
                try:
                    lines = artifact_transcript(reply.json())
                except ValueError:
                    lines = None
                if lines is not None:
                    return lines
            if time.monotonic() + pause > deadline:
                return None
            gevent.sleep(pause)
            pause = min(pause * 2, REPORT_POLL[1])

    def _events(self, kind: str, data: str | bytes) -> list:
        if kind == "binary":  # the assistant's audio, in the configured format
            return [Media(data)] if data else []
        msg = json_object(data)
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
