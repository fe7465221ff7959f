"""``voicegw serve`` as systemd runs it: a separate process, configured by environment."""

import os
import signal
import socket
import subprocess
import sys
import time

from pathlib import Path

import gevent
import requests

from gateway.simulator import Simulator

DIALPLAN = Path(__file__).resolve().parents[1] / "dialplan"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_connects_to_freeswitch_answers_health_and_stops_on_sigterm(tmp_path):
    sim = Simulator(port=0, dialplan_dir=str(DIALPLAN))
    sim.start()
    port = free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
           "GATEWAY_HTTP": f"127.0.0.1:{port}", "FREESWITCH_NODES": f"127.0.0.1:{sim.port}:ClueCon",
           "GATEWAY_MEDIA_LISTEN": f"127.0.0.1:{free_port()}", "GATEWAY_MEDIA_DIR": str(tmp_path / "media")}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except requests.ConnectionError:
                gevent.sleep(0.1)  # readiness poll of another process, bounded by the deadline
                continue
            if health.status_code == 200:
                break
            gevent.sleep(0.1)
        assert health is not None and health.status_code == 200, log_path.read_text()
        assert health.json()["freeswitch"][f"127.0.0.1:{sim.port}"]["connected"] is True
        assert requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["openapi"].startswith("3.")
        node = f"127.0.0.1:{sim.port}"
        # at its first connect it plays a tone through the node's playback form and says what was heard
        heard = f"FreeSWITCH {node}: a bot is heard: stream form: 100% of a 1 s tone heard"
        while time.monotonic() < deadline and heard not in log_path.read_text():
            gevent.sleep(0.1)  # the log of another process, bounded by the deadline
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0
        log = log_path.read_text()
        for line in (f"HTTP API on http://127.0.0.1:{port}", f"media bridge on ws://{env['GATEWAY_MEDIA_LISTEN']}",
                     f"FreeSWITCH {node}: bot audio in the stream form", heard,
                     f"FreeSWITCH {node} connected: version 1.10.12-release, 30 sessions/s, 1000 sessions max"):
            assert line in log, log
    finally:
        if server.poll() is None:
            server.kill()
        sim.stop()


def test_api_and_media_connections_have_nagle_off(monkeypatch):
    """Without TCP_NODELAY a keep-alive client's next request waits for the delayed ACK of
    the last response (a 40 ms floor per request), and 20 ms media frames bunch up."""
    from gevent.pywsgi import WSGIServer
    from websocket import create_connection

    from gateway.media.bridge import MediaBridge
    from gateway.runtime import ApiServer

    seen = {}
    plain_handle = WSGIServer.handle

    def recording_handle(server, sock, address):
        seen["api"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        plain_handle(server, sock, address)

    monkeypatch.setattr(WSGIServer, "handle", recording_handle)
    api = ApiServer(("127.0.0.1", 0), lambda environ, start: (start("204 No Content", []), [])[1], log=None)
    api.start()
    try:
        assert requests.get(f"http://127.0.0.1:{api.server_port}/", timeout=5).status_code == 204
    finally:
        api.stop(timeout=1)

    plain_handshake = MediaBridge._handshake

    def recording_handshake(bridge, sock, ws):
        seen["media"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        return plain_handshake(bridge, sock, ws)

    monkeypatch.setattr(MediaBridge, "_handshake", recording_handshake)
    bridge = MediaBridge("127.0.0.1", 0)
    bridge.start()
    try:
        try:
            create_connection(f"ws://127.0.0.1:{bridge.port}/stream/unknown?token=x", timeout=5).close()
        except Exception:
            pass  # an unknown stream is refused; the socket was accepted all the same
    finally:
        bridge.stop()
    assert seen == {"api": 1, "media": 1}
