"""Bot WebSocket URLs and the outbound policy at connect time (``media/connectors/guarded.py``):
every internal form refused before a socket opens, the connection made to the address that
was checked (DNS rebinding), redirects not followed, TLS against the URL's host, and call
logs that say only "bot unreachable" with a coarse reason. Real sockets on 127.0.0.1."""
from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import time

import gevent
import pytest
from gevent.server import StreamServer

from gateway import net_policy, simulate_call
from gateway.calls.controller import CallError
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings
from gateway.media.connectors import BotUnavailable, CallInfo, open_link
from gateway.media.connectors.guarded import NO_ADDRESS, NO_CONNECTION, NOT_ALLOWED, open_websocket
from gateway.models import Account, CallEvent
from gateway.models.validators import check_media_target
from gateway.simulate_call import named_bot_addresses
from media_support import MediaRig, WsServer
from net_support import LOOPBACK_HOSTS, fake_resolver

CALLER = "+15550009999"
CALLEE = "+15550100001"
INFO = CallInfo("c0ffee00-0000-4000-8000-000000000001", "1")


class TcpRecorder:
    """A TCP listener on 127.0.0.1 that records every connection and answers ``reply``
    (None: says nothing, holds the connection)."""

    def __init__(self, reply: bytes | None = None) -> None:
        self.reply = reply
        self.accepted: list = []
        self.received: list[bytes] = []
        self._server = StreamServer(("127.0.0.1", 0), self._handle)
        self._server.start()
        self.port = self._server.server_port

    def _handle(self, sock, address) -> None:
        self.accepted.append(address)
        self.received.append(sock.recv(65536))
        if self.reply is None:
            gevent.sleep(5)
        else:
            sock.sendall(self.reply)
        sock.close()

    def stop(self) -> None:
        self._server.stop(timeout=1)


@pytest.fixture
def recorder():
    made = []

    def make(reply: bytes | None = None) -> TcpRecorder:
        made.append(TcpRecorder(reply))
        return made[-1]
    yield make
    for server in made:
        server.stop()


def dial(url: str, timeout: float = 1.0):
    return open_websocket(url, headers=[], connect_timeout=timeout, policy=net_policy.policy)


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_no_loopback_form_gets_a_connection(recorder, host):
    listener = recorder()
    for scheme in ("ws", "wss"):
        with pytest.raises(BotUnavailable) as refused:
            dial(f"{scheme}://{host}:{listener.port}/bot")
        assert str(refused.value) == NOT_ALLOWED
    assert listener.accepted == []


@pytest.mark.parametrize("url", [
    "ws://evil.example.com@127.0.0.1:{port}/", "ws://user:secret@127.1:{port}/",
    "ws://127.0.0.1:{port}#@bots.example.com/", "ws://127.0.0.1:{port}/?host=bots.example.com",
    "ws://inside.test:{port}/", "ws://mixed.test:{port}/", "ws://metadata.test:{port}/latest",
])
def test_userinfo_fragments_and_names_resolving_inside_are_refused(recorder, monkeypatch, url):
    listener = recorder()
    monkeypatch.setattr(net_policy.policy, "resolver", fake_resolver({
        "inside.test": ["127.0.0.1"], "mixed.test": ["93.184.215.14", "127.0.0.1"],
        "metadata.test": ["169.254.169.254"]}))
    with pytest.raises(BotUnavailable, match=NOT_ALLOWED):
        dial(url.format(port=listener.port))
    assert listener.accepted == []


def test_an_allowed_name_is_connected_at_the_address_it_was_checked_at(bot, monkeypatch, loopback_allowed):
    """bot.test exists only in the test's resolver: the socket goes to the address the
    policy resolved and checked, never to the name."""
    monkeypatch.setattr(net_policy.policy, "resolver", fake_resolver({"bot.test": ["127.0.0.1"]}))
    link = open_link("websocket", f"ws://bot.test:{bot.port}/media", INFO, connect_timeout=2)
    try:
        assert bot.wait_event("start")[0]["start"]["customParameters"]["call_uuid"] == INFO.call_uuid
        assert bot.peers[0].path == "/media"
    finally:
        link.kill()


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect(recorder, monkeypatch):
    listener = recorder()
    answers = iter(["93.184.215.14", "127.0.0.1"])
    monkeypatch.setattr(net_policy.policy, "resolver",
                        lambda host, port: [(socket.AF_INET, (next(answers), port))])
    url = f"ws://rebind.test:{listener.port}/bot"
    assert check_media_target(url) == url  # given: the name resolved to a public address
    with pytest.raises(BotUnavailable, match=NOT_ALLOWED):  # connecting: it resolves to 127.0.0.1 now
        dial(url)
    assert listener.accepted == []


def test_failures_read_alike_and_repeat_nothing_the_far_end_sent(recorder, loopback_allowed):
    """Refused, timed out, not a WebSocket server, upgrade refused with a body, a
    redirect: one coarse reason, so a bot URL cannot tell which ports answer."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = recorder()
    http = recorder(b"HTTP/1.1 404 Not Found\r\nContent-Length: 27\r\n\r\ninternal admin panel v1.2.3")
    target = recorder()
    redirect = recorder(b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:%d/\r\nContent-Length: 0\r\n\r\n"
                        % target.port)
    garbage = recorder(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    for port in (closed_port, silent.port, http.port, redirect.port, garbage.port):
        with pytest.raises(BotUnavailable) as failed:
            dial(f"ws://127.0.0.1:{port}/bot", timeout=0.3)
        assert str(failed.value) == NO_CONNECTION, port
    assert target.accepted == []  # the redirect was not followed
    assert http.received[0].startswith(b"GET /bot HTTP/1.1\r\n")
    with pytest.raises(BotUnavailable, match=NO_ADDRESS):
        dial("ws://bot.invalid/")


def test_proxy_settings_in_the_environment_are_not_used(bot, monkeypatch, loopback_allowed):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9/")
    ws = dial(bot.url())
    ws.close()
    assert bot.wait_for(lambda: bot.peers, what="a connection")


@pytest.fixture(scope="module")
def localhost_cert(tmp_path_factory):
    """A self-signed certificate for the name ``localhost`` (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_wss_verifies_the_url_host_on_the_checked_address(localhost_cert, monkeypatch, loopback_allowed):
    cert, key = localhost_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = WsServer(ssl_context=context)
    try:
        with pytest.raises(BotUnavailable, match=NO_CONNECTION):  # not a trusted certificate
            dial(f"wss://localhost:{server.port}/bot")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted from now on
        ws = dial(f"wss://localhost:{server.port}/bot")
        ws.send('{"event":"connected"}')
        server.wait_for(lambda: server.peers and server.peers[0].texts(), what="a message over TLS")
        ws.close()
        with pytest.raises(BotUnavailable, match=NO_CONNECTION):  # the certificate names localhost only
            dial(f"wss://127.0.0.1:{server.port}/bot")
    finally:
        server.stop()


# -- a call's media session ----------------------------------------------------------------------


@pytest.fixture
def rig(database, sim):
    made = MediaRig(sim, MediaSettings(playback="stream", bot_connect_timeout=1.0))
    yield made
    made.stop()


def media_log(call_uuid):
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "media")
            .order_by(CallEvent.seq)]


def wait_log(call_uuid, event, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in media_log(call_uuid) if d.get("event") == event]
        if found:
            return found
        gevent.sleep(0.02)  # the log is written by the controller's worker: poll the table
    raise TimeoutError(f"no {event} in the call log")


def test_a_stored_internal_target_is_refused_at_connect_and_the_call_hung_up(rig, sim, bot):
    """Targets that never passed an input check (an account default set before the
    policy, a routing answer, a dialplan variable) meet the same policy when connecting."""
    account = Account.create(name="acme", default_socket_url=f"ws://0x7f000001:{bot.port}/fallback")
    call = rig.controller.originate(account.id, CALLEE, CALLER, socket_url=f"ws://localhost:{bot.port}/bot")
    rig.controller.wait_status(call.uuid, FINAL, 10)
    failed = wait_log(call.uuid, "bot_connect_failed")
    assert [(f["target"], f["error"]) for f in failed] == [
        (f"ws://localhost:{bot.port}/bot", NOT_ALLOWED), (f"ws://0x7f000001:{bot.port}/fallback", NOT_ALLOWED)]
    assert wait_log(call.uuid, "hangup")[0]["reason"] == "bot_unreachable"
    assert bot.peers == []


def test_redirect_to_an_internal_bot_is_refused_and_the_first_bot_keeps_the_call(rig, sim, bot, monkeypatch,
                                                                                  loopback_allowed):
    monkeypatch.setattr(net_policy.policy, "resolver", fake_resolver({"inside.test": ["10.0.0.9"]}))
    account = Account.create(name="acme")
    call = rig.controller.originate(account.id, CALLEE, CALLER, socket_url=bot.url("/first"))
    rig.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    bot.wait_event("start")
    with pytest.raises(CallError) as refused:
        rig.media.redirect(call.uuid, f"ws://inside.test:{bot.port}/second")
    assert refused.value.code == 502
    failed = wait_log(call.uuid, "bot_connect_failed")
    assert failed[-1]["error"] == NOT_ALLOWED
    assert len(bot.peers) == 1 and not bot.peers[0].closed  # the first bot still has the call
    rig.controller.hangup(call.uuid)
    rig.controller.wait_status(call.uuid, FINAL, 5)


def test_the_call_log_does_not_echo_an_upgrade_refusal(rig, sim, recorder, loopback_allowed):
    banner = recorder(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 22\r\n\r\nredis_version:7.2.4 ok")
    account = Account.create(name="acme")
    call = rig.controller.originate(account.id, CALLEE, CALLER, socket_url=f"ws://127.0.0.1:{banner.port}/")
    rig.controller.wait_status(call.uuid, FINAL, 10)
    failed = wait_log(call.uuid, "bot_connect_failed")
    assert failed[0]["error"] == NO_CONNECTION
    logged = str(media_log(call.uuid)).replace(f"127.0.0.1:{banner.port}", "")  # its port may hold "403"
    assert "redis" not in logged and "403" not in logged


def test_simulate_call_allows_the_bot_the_operator_names(bot):
    """``voicegw simulate-call --socket-url ws://localhost:…`` tests the operator's own bot,
    internal or not: its addresses are allowed for that run only."""
    out = io.StringIO()
    assert named_bot_addresses(f"ws://localhost:{bot.port}/") == ["127.0.0.1"]
    assert named_bot_addresses("elevenlabs") == [] and named_bot_addresses("ws://nowhere.invalid/") == []
    assert simulate_call.call_bot(f"ws://localhost:{bot.port}/bot", 0.3, None, out=out) == 0, out.getvalue()
    assert bot.peers and bot.peers[0].path == "/bot"
    assert bot.events(event="start")  # the bot got the call's session
    assert net_policy.policy.allowlist == ()
