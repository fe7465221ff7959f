"""``voicegw serve`` as systemd runs it: a separate process, configured by environment."""

import os
import signal
import socket
import subprocess
import sys
import time

import gevent
import requests

from gateway.simulator import Simulator


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_connects_to_freeswitch_answers_health_and_stops_on_sigterm(tmp_path):
    sim = Simulator(port=0)
    sim.start()
    port = free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
           "GATEWAY_HTTP": f"127.0.0.1:{port}", "FREESWITCH_NODES": f"127.0.0.1:{sim.port}:ClueCon",
           "GATEWAY_MEDIA_LISTEN": f"127.0.0.1:{free_port()}"}
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        assert health is not None and health.status_code == 200, server.stdout.read1().decode() if server.poll() else ""
        assert health.json()["freeswitch"][f"127.0.0.1:{sim.port}"]["connected"] is True
        assert requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["openapi"].startswith("3.")
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0
    finally:
        if server.poll() is None:
            server.kill()
        sim.stop()
