"""Test helpers for webhooks: a recording HTTP receiver on 127.0.0.1, the contracts'
own verifiers, and shortcuts to make calls move through the controller's write path."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import gevent
from gevent.pywsgi import WSGIServer

from gateway.calls import store
from gateway.calls.states import EndReason, Status, Transition
from gateway.models import Account, Call
from gateway.domain import MEDIA_ESTABLISHED
from gateway.webhooks.outbox import outbox_hook, outbox_log_hook


# -- the contracts' verifiers ---------------------------------------------------------------


def verify_signature(secret_string, payload_dict, signature_header):
    """The call-control contract's "Python Verification Example", as published."""
    if not signature_header or not signature_header.startswith("sha256="):
        return False
    # 1. Deterministic serialization exactly as sent by Agera
    payload_bytes = json.dumps(
        payload_dict,
        sort_keys=True,
        separators=(',', ':'),
        ensure_ascii=False
    ).encode('utf-8')
    # 2. Extract the hash from the header
    received_signature = signature_header.split("=")[1]
    # 3. Generate expected HMAC-SHA256
    expected_signature = hmac.new(
        secret_string.encode('utf-8'),
        payload_bytes,
        hashlib.sha256
    ).hexdigest()
    # 4. Secure string comparison
    return hmac.compare_digest(received_signature, expected_signature)


def verify_raw_body(raw_body: bytes, signature: str, secret: str) -> bool:
    """The agent-call contract's Express ``verifySignature`` in Python: HMAC of the raw body."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode(), expected.encode())


# -- the receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict  # lower-case names
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"received": true}'
    delay: float = 0.0


class Receiver:
    """A customer's webhook endpoint: records every request, answers as scripted.

    ``script(Reply(...), ...)`` queues answers for the next requests; afterwards
    ``default`` answers. ``down()`` closes the listening socket (connection refused),
    ``up()`` listens on the same port again.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.port = 0
        self._server: WSGIServer | None = None

    def start(self) -> Receiver:
        self._server = WSGIServer(("127.0.0.1", self.port), self._app, log=None, error_log=None)
        self._server.start()
        self.port = self._server.server_port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=0.2)
            self._server = None

    down = stop

    def up(self) -> None:
        self.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = environ["CONTENT_LENGTH"]
        self.requests.append(Received(environ["REQUEST_METHOD"], environ["PATH_INFO"], headers, body))
        reply = self.replies.popleft() if self.replies else self.default
        if reply.delay:
            gevent.sleep(reply.delay)
        start_response(f"{reply.status} Status", [("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(reply.body)))])
        return [reply.body]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.requests)} requests, expected {count}")
            gevent.sleep(0.01)
        return self.requests


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        gevent.sleep(interval)


# -- calls moving through the controller's write path ---------------------------------------------


def make_call(account: Account, **fields) -> Call:
    fields = {
        "uuid": str(uuid.uuid4()),
        "account": account,
        "direction": "outbound",
        "from_number": "+15550000001",
        "to_number": "+15550000002",
        "node": "127.0.0.1:8021",
        "created_at": datetime(2026, 2, 9, 14, 29, 50, tzinfo=timezone.utc),
        **fields,
    }
    return Call.create(**fields)


T0 = datetime(2026, 2, 9, 14, 30, 0, tzinfo=timezone.utc)


def ringing(at: datetime = T0) -> Transition:
    return Transition(Status.RINGING, at, "CHANNEL_PROGRESS")


def answered(at: datetime = T0) -> Transition:
    return Transition(Status.IN_PROGRESS, at, "CHANNEL_ANSWER")


def completed(at: datetime = T0, billsec: int = 45, duration: int = 50) -> Transition:
    return Transition(Status.COMPLETED, at, "CHANNEL_HANGUP_COMPLETE", end_reason=EndReason.COMPLETED,
                      hangup_cause="NORMAL_CLEARING", billsec=billsec, duration_sec=duration)


def missed(at: datetime = T0) -> Transition:
    return Transition(Status.MISSED, at, "CHANNEL_HANGUP_COMPLETE", end_reason=EndReason.NO_ANSWER,
                      hangup_cause="NO_ANSWER", billsec=0, duration_sec=30)


def failed(at: datetime = T0, cause: str = "USER_BUSY", reason: EndReason = EndReason.BUSY) -> Transition:
    return Transition(Status.FAILED, at, "CHANNEL_HANGUP_COMPLETE", end_reason=reason,
                      hangup_cause=cause, billsec=0, duration_sec=3)


_seqs: dict[str, int] = {}


def _next_seq(call: Call) -> int:
    _seqs[call.uuid] = _seqs.get(call.uuid, 0) + 1
    return _seqs[call.uuid]


def established_entry(call: Call, at: datetime, seq: int) -> dict:
    """The call-log entry ``MediaSessions`` writes once the call's bot and stream are up."""
    entry = store.log_entry(call.uuid, seq, "media", {"event": MEDIA_ESTABLISHED}, Status.IN_PROGRESS.value)
    return {**entry, "at": at}


def move(call: Call, *transitions: Transition, media: bool = True) -> None:
    """Apply ``transitions`` to ``call`` in one batch, as the controller's worker does
    (status update, event log, ``outbox_hook`` and ``outbox_log_hook`` in one transaction).

    An answer comes with its media session established at the same moment (the entry
    ``call.answered`` is sent from), as for a call with a bot; ``media=False``: a call
    whose media never comes up."""
    changes, logs = [], []
    status = Call.get_by_id(call.uuid).status
    for transition in transitions:
        changes.append((call.uuid, status, _next_seq(call), transition))
        if media and transition.to_status is Status.IN_PROGRESS:
            logs.append(established_entry(call, transition.at, _next_seq(call)))
        status = transition.to_status.value
    store.apply(changes, logs, [outbox_hook], [outbox_log_hook])


# -- fixtures (import them into a test module to use them) -------------------------------------

import pytest  # noqa: E402


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
