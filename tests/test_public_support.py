"""Fixtures and helpers of the public calling API tests (``/api/public/v1``); no tests here.

Import them with ``from test_public_support import *``. They build on ``api_support``: a
Gateway over the test database (SQLite and PostgreSQL) with a simulator node. Account
``IN`` is an Indian account (region IN, Asia/Kolkata, INR) with a key pair, a balance, a
default caller ID, an agent destination and no practical rate limit.
"""
from __future__ import annotations

import io
import wave
from decimal import Decimal

import numpy as np
import pytest

from api_support import *  # noqa: F401,F403 -- fixtures gw, client (sim is conftest's)
from gateway.auth.keys import create_key
from gateway.calls.states import FINAL
from gateway.campaigns.audio import store_clip
from gateway.models import Account, Call

__all__ = [
    "BASE", "CALLER", "FINAL", "Account", "Call", "auth", "client", "clip", "gw", "india", "other", "pair",
    "other_pair", "tone_wav", "media_dir", "wait_final", "wait_script",
]

BASE = "/api/public/v1"
CALLER = "+917965318581"


def tone_wav(seconds: float = 0.3, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    if channels > 1:
        samples = np.repeat(samples[:, None], channels, axis=1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def media_dir(tmp_path, monkeypatch):
    """Autouse: set before the gateway starts, undone after it stops, so that no late
    script writes under the working directory."""
    path = tmp_path / "media"
    monkeypatch.setenv("GATEWAY_MEDIA_DIR", str(path))
    return path


@pytest.fixture
def india(gw, sim, media_dir):
    sim.speak_chars_per_second = 1000.0  # speech takes what its text takes, fast
    sim.default_play_seconds = 0.1
    return Account.create(name="acme-india", region="IN", timezone="Asia/Kolkata", currency="INR",
                          default_caller_id=CALLER, balance=Decimal("500"), rate_limit_per_minute=100_000,
                          agent_destination="1000", transfer_numbers=["+", "1000"])


@pytest.fixture
def other(gw, media_dir):
    return Account.create(name="globex-india", region="IN", timezone="Asia/Kolkata", currency="INR",
                          default_caller_id="+912240001234", balance=Decimal("500"), rate_limit_per_minute=100_000)


@pytest.fixture
def pair(india):
    api_key, secret = create_key(india)
    return api_key.publishable_id, secret


@pytest.fixture
def other_pair(other):
    api_key, secret = create_key(other)
    return api_key.publishable_id, secret


def auth(pair) -> dict:
    return {"x-api-key": pair[0], "x-api-secret": pair[1]}


@pytest.fixture
def clip(india):
    return store_clip(india, tone_wav(0.3), name="promo")


def wait_final(gw, call_uuid: str, timeout: float = 10.0):
    gw.controller.wait_status(call_uuid, FINAL, timeout)
    return Call.get_by_id(call_uuid)


def wait_script(gw, call_uuid: str, timeout: float = 10.0):
    """The script the call ran, once it has finished."""
    import gevent

    runner = gw.controller.public_scripts
    with gevent.Timeout(timeout):
        while call_uuid not in runner.finished:
            gevent.sleep(0.01)
    return runner.finished[call_uuid]
