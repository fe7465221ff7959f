"""Local stand-ins for ElevenLabs and Vapi, on 127.0.0.1 port 0, built from the
providers' documents and their official SDKs' types (``elevenlabs``, ``vapi_server_sdk``
on PyPI), never from the gateway's connectors: they check what the gateway sends
against those types and record every departure in ``problems`` (a test asserts it stays
empty).

* ``ElevenLabsStandIn``: on one port, the HTTP API's ``GET /v1/convai/conversation/get-signed-url``
  (``xi-api-key`` checked, answered with the SDK's ``ConversationSignedUrlResponseModel``)
  and the conversation WebSocket, which admits a private agent only by a signature it
  issued (once) and a public one by its ``agent_id``; it answers the client data with
  ``conversation_initiation_metadata`` naming the agent's formats (omitted: the
  agent's default), and lets the test speak as the agent;
* ``VapiStandIn``: ``POST /call`` (bearer key checked; the body checked against the SDK's
  ``VapiWebsocketTransport`` / ``AudioFormat`` / ``AssistantOverrides``), the call's
  transport WebSocket, and ``GET /call/{id}`` answering the call with the ``artifact``
  the test sets once it has ended.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
from typing import get_args
from urllib.parse import parse_qs, urlsplit

from elevenlabs.conversational_ai.conversation import ClientToOrchestratorEvent
from elevenlabs.types import (
    AgentConfigOverrideInput, AsrInputFormat, ConversationConfigClientOverrideInput,
    ConversationInitiationClientDataRequestInput, ConversationSignedUrlResponseModel,
    PromptAgentApiModelOverrideInput, TtsConversationalConfigOverride,
)
import h11
from gevent.pywsgi import WSGIServer
from vapi.types import AudioFormat, VapiWebsocketTransport

from media_support import Peer, WsServer

CONVERSATION_PATH = "/v1/convai/conversation"
SIGNED_URL_PATH = "/v1/convai/conversation/get-signed-url"
#: The audio formats of the SDK's ``AsrInputFormat`` (the same list as its ``AudioFormatEnum``).
EL_FORMATS = next(get_args(arg) for arg in get_args(AsrInputFormat) if get_args(arg))
EL_CLIENT_TYPES = {event.value for event in ClientToOrchestratorEvent}


def unknown_fields(model, data: dict, at: str) -> list[str]:
    """The keys of ``data`` that ``model`` (an SDK pydantic type) has no field for."""
    names = set()
    for name, info in model.model_fields.items():
        names.update({name, info.alias or name})
    return [f"{at}.{key} is not a field of {model.__name__}" for key in data if key not in names]


def validated(model, data, at: str) -> list[str]:
    """What is wrong with ``data`` as an SDK type: its validation errors and unknown keys."""
    if not isinstance(data, dict):
        return [f"{at} is not an object"]
    try:
        model.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError
        return [f"{at}: {exc}"]
    return unknown_fields(model, data, at)


class _Http:
    """A WSGI app on 127.0.0.1 (``app(method, path, query, headers, body) -> (status, dict)``)."""

    def __init__(self, app) -> None:
        self._app = app
        self.server = WSGIServer(("127.0.0.1", 0), self._wsgi, log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _wsgi(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        status, answer = self._app(environ["REQUEST_METHOD"], environ["PATH_INFO"],
                                   parse_qs(environ.get("QUERY_STRING", "")), headers, body)
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    def stop(self) -> None:
        self.server.stop(timeout=1)


class _ApiAndSocket(WsServer):
    """One port for an HTTP API and its WebSocket, as one host serves both: a request that
    asks for an upgrade goes to ``WsServer``, any other to ``app`` (``_Http``'s signature)."""

    def __init__(self, app) -> None:
        super().__init__()
        self.app = app

    def _handle(self, sock, address) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            head = sock.recv(16384, socket.MSG_PEEK)
            if not head:
                return
        if b"upgrade: websocket" in head.lower():
            super()._handle(sock, address)
            return
        conn = h11.Connection(h11.SERVER)
        request, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        target = urlsplit(request.target.decode())
        headers = {name.decode().lower(): value.decode() for name, value in request.headers}
        status, answer = self.app(request.method.decode(), target.path, parse_qs(target.query), headers, body)
        data = json.dumps(answer).encode()
        code, _, reason = status.partition(" ")
        sock.sendall(conn.send(h11.Response(status_code=int(code), reason=reason.encode(), headers=[
            ("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Connection", "close")])))
        sock.sendall(conn.send(h11.Data(data=data)) + conn.send(h11.EndOfMessage()))
        sock.close()


class ElevenLabsStandIn:
    """ElevenLabs' signed-URL endpoint and conversation socket (see the module docstring).

    ``agents``: agent id -> True for a private agent (a signed URL needed), False for a
    public one.  ``input_format`` / ``output_format``: what the metadata names (None:
    the field is left out)."""

    def __init__(self, *, api_key: str = "xi-secret", agents: dict | None = None,
                 input_format: str | None = "ulaw_8000", output_format: str | None = "ulaw_8000") -> None:
        self.api_key = api_key
        self.agents = agents if agents is not None else {"agent_123": True}
        self.input_format, self.output_format = input_format, output_format
        self.hold_metadata = False  # True: the metadata waits for ``release_metadata()``
        self._held: list[Peer] = []
        self.problems: list[str] = []
        self.signed_requests: list[dict] = []  # {"agent_id", "headers"}
        self._signatures: dict[str, str] = {}  # signature -> agent id, until used
        self.ws = _ApiAndSocket(self._api)
        self.ws.on_connect = self._admit
        self.ws.on_message = self._on_message
        self.url = f"http://127.0.0.1:{self.ws.port}"  # the base URL the gateway is given (ELEVENLABS_API_URL)

    # -- the HTTP API -------------------------------------------------------------------
    def _api(self, method, path, query, headers, body):
        if method != "GET" or path != SIGNED_URL_PATH:
            return "404 Not Found", {"detail": "Not Found"}
        agent_id = (query.get("agent_id") or [""])[0]
        self.signed_requests.append({"agent_id": agent_id, "headers": headers})
        if headers.get("xi-api-key") != self.api_key:
            return "401 Unauthorized", {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
        if agent_id not in self.agents:
            return "404 Not Found", {"detail": {"status": "agent_not_found", "message": "Agent not found"}}
        signature = secrets.token_urlsafe(16)
        self._signatures[signature] = agent_id
        url = (f"ws://127.0.0.1:{self.ws.port}{CONVERSATION_PATH}?agent_id={agent_id}"
               f"&conversation_signature={signature}")
        return "200 OK", ConversationSignedUrlResponseModel(signed_url=url).model_dump()

    # -- the conversation socket --------------------------------------------------------
    def _admit(self, peer: Peer) -> None:
        parts = urlsplit(peer.path)
        query = parse_qs(parts.query)
        agent_id = (query.get("agent_id") or [""])[0]
        signature = (query.get("conversation_signature") or [None])[0]
        if parts.path != CONVERSATION_PATH or agent_id not in self.agents:
            peer.close(1008, "unknown agent")
        elif signature is not None and self._signatures.pop(signature, None) != agent_id:
            peer.close(1008, "invalid signature")
        elif signature is None and self.agents[agent_id]:
            peer.close(1008, "this agent requires a signed URL")

    def _on_message(self, peer: Peer, kind: str, data) -> None:
        if kind != "text":
            self.problems.append("a binary frame (the protocol is JSON text)")
            return
        try:
            msg = json.loads(data)
        except ValueError:
            self.problems.append(f"not JSON: {data[:80]!r}")
            return
        if set(msg) == {"user_audio_chunk"}:
            try:
                base64.b64decode(msg["user_audio_chunk"], validate=True)
            except ValueError:
                self.problems.append("user_audio_chunk is not base64")
            return
        kind = msg.get("type")
        if kind not in EL_CLIENT_TYPES:
            self.problems.append(f"unknown client message type {kind!r}")
        elif kind == "conversation_initiation_client_data":
            self._check_client_data(msg)
            if self.hold_metadata:
                self._held.append(peer)
            else:
                self._send_metadata(peer)
        elif kind == "pong" and (set(msg) != {"type", "event_id"} or not isinstance(msg["event_id"], int)):
            self.problems.append(f"pong is not {{type, event_id: int}}: {msg}")
        elif kind == "client_tool_result":
            if set(msg) != {"type", "tool_call_id", "result", "is_error"} or \
                    not isinstance(msg["tool_call_id"], str) or not isinstance(msg["is_error"], bool):
                self.problems.append(f"client_tool_result is not {{type, tool_call_id, result, is_error}}: {msg}")

    def _send_metadata(self, peer: Peer) -> None:
        metadata = {"conversation_id": f"conv_{len(self.ws.peers)}"}
        if self.input_format is not None:
            metadata["user_input_audio_format"] = self.input_format
        if self.output_format is not None:
            metadata["agent_output_audio_format"] = self.output_format
        peer.send_text(json.dumps({"type": "conversation_initiation_metadata",
                                   "conversation_initiation_metadata_event": metadata}))

    def release_metadata(self) -> None:
        held, self._held = self._held, []
        for peer in held:
            self._send_metadata(peer)

    def _check_client_data(self, msg: dict) -> None:
        data = {k: v for k, v in msg.items() if k != "type"}
        self.problems += validated(ConversationInitiationClientDataRequestInput, data, "client_data")
        override = data.get("conversation_config_override")
        if override is None:
            return
        self.problems += validated(ConversationConfigClientOverrideInput, override, "conversation_config_override")
        if isinstance(override.get("agent"), dict):
            agent = override["agent"]
            self.problems += validated(AgentConfigOverrideInput, agent, "override.agent")
            if "prompt" in agent:
                self.problems += validated(PromptAgentApiModelOverrideInput, agent["prompt"], "override.agent.prompt")
        if "tts" in override:
            self.problems += validated(TtsConversationalConfigOverride, override["tts"], "override.tts")

    # -- for the test -------------------------------------------------------------------
    def peer(self, timeout: float = 5.0) -> Peer:
        return self.ws.wait_for(lambda: self.ws.peers and self.ws.peers[-1], timeout, "a conversation")

    def client_data(self, peer_index: int = -1) -> dict:
        return self.ws.wait_for(
            lambda: next((m for m in self.ws.peers[peer_index].json()
                          if m.get("type") == "conversation_initiation_client_data"), None), 5, "client data")

    def user_audio(self, peer_index: int = -1) -> bytes:
        return b"".join(base64.b64decode(m["user_audio_chunk"]) for m in self.ws.peers[peer_index].json()
                        if "user_audio_chunk" in m)

    def sent(self, type_: str, peer_index: int = -1) -> list[dict]:
        """The gateway's messages of one type."""
        return [m for m in self.ws.peers[peer_index].json() if m.get("type") == type_]

    def send(self, message: dict, peer_index: int = -1) -> None:
        self.ws.peers[peer_index].send_text(json.dumps(message))

    def send_audio(self, audio: bytes, event_id: int, peer_index: int = -1) -> None:
        self.send({"type": "audio", "audio_event": {"audio_base_64": base64.b64encode(audio).decode(),
                                                    "event_id": event_id}}, peer_index)

    def stop(self) -> None:
        self.ws.stop()


class VapiStandIn:
    """Vapi's ``POST /call`` and ``GET /call/{id}``, and the call's transport socket.

    ``artifacts``: call id -> the ``artifact`` of the call once it has ended (set by the
    test); until then ``GET /call/{id}`` answers the call ``in-progress``."""

    def __init__(self, api_key: str = "vapi-secret") -> None:
        # Imported here, not in a request (it would hold up the hub): building the SDK's
        # AssistantOverrides reaches most of Vapi's schema and takes seconds, once per
        # process, paid only by the tests that use this stand-in.
        from vapi.types import AssistantOverrides
        self._overrides = AssistantOverrides
        self.api_key = api_key
        self.problems: list[str] = []
        self.requests: list[tuple[dict, dict]] = []  # (body, headers) of each accepted POST /call
        self.reads: list[str] = []  # the call ids GET /call/{id} was asked for
        self.artifacts: dict[str, dict] = {}
        self.ws = WsServer()
        self.http = _Http(self._api)
        self.url = self.http.url

    def _api(self, method, path, query, headers, body):
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return "401 Unauthorized", {"message": "Invalid Key. Hot tip, you may be using the private key "
                                                   "instead of the public key, or vice versa.",
                                        "error": "Unauthorized", "statusCode": 401}
        if method == "POST" and path == "/call":
            return self._create(json.loads(body), headers)
        if method == "GET" and path.startswith("/call/"):
            call_id = path[len("/call/"):]
            self.reads.append(call_id)
            if call_id not in {f"call-{n}" for n in range(1, len(self.requests) + 1)}:
                return "404 Not Found", {"message": "Not Found", "statusCode": 404}
            if call_id not in self.artifacts:
                return "200 OK", {"id": call_id, "type": "vapi.websocketCall", "status": "in-progress"}
            return "200 OK", {"id": call_id, "type": "vapi.websocketCall", "status": "ended",
                              "endedReason": "customer-ended-call", "artifact": self.artifacts[call_id]}
        return "404 Not Found", {"message": "Not Found", "statusCode": 404}

    def _create(self, data: dict, headers: dict):
        transport = data.get("transport")
        self.problems += validated(VapiWebsocketTransport, {k: v for k, v in (transport or {}).items()
                                                            if k != "provider"}, "transport")
        if not isinstance(transport, dict) or transport.get("provider") != "vapi.websocket":
            self.problems.append("transport.provider is not vapi.websocket")
        else:
            self.problems += validated(AudioFormat, transport.get("audioFormat"), "transport.audioFormat")
        if "assistantOverrides" in data:
            self.problems += validated(self._overrides, data["assistantOverrides"], "assistantOverrides")
        if "phoneNumber" in data or "phoneNumberId" in data:
            self.problems.append("phone-based parameters are not permitted with the WebSocket transport")
        if not isinstance(data.get("assistantId"), str):
            return "400 Bad Request", {"message": ["assistantId must be a string"], "statusCode": 400}
        self.requests.append((data, headers))
        call_id = f"call-{len(self.requests)}"
        return "201 Created", {"id": call_id, "assistantId": data["assistantId"], "type": "vapi.websocketCall",
                               "status": "queued",
                               "transport": {"provider": "vapi.websocket",
                                             "websocketCallUrl": f"ws://127.0.0.1:{self.ws.port}/{call_id}/transport"}}

    def peer(self, timeout: float = 5.0) -> Peer:
        return self.ws.wait_for(lambda: self.ws.peers and self.ws.peers[-1], timeout, "a transport socket")

    def stop(self) -> None:
        self.ws.stop()
        self.http.stop()
