"""Fixtures for the REST API tests: a Gateway over the test database with a simulator node,
its Flask test client, and two accounts (A and B) with keys.

Import the fixtures into a test module with ``from api_support import *``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway import models
from gateway.auth.keys import create_key
from gateway.calls.states import FINAL, Status
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings
from gateway.models import Account, Agent
from gateway.runtime import Gateway

CALLER_ID = "+12125550100"
DEFAULT_SOCKET = "wss://bot.example.com/media"

__all__ = [
    "CALLER_ID", "DEFAULT_SOCKET", "FINAL", "Status", "account_a", "account_b", "client",
    "gw", "headers", "key_a", "key_b", "bearer", "make_agent",
]


def _gateway(database_url, nodes, media=MediaSettings(enabled=False)):
    # No media bridge by default: these tests are about the REST surfaces and the call
    # rows; the bridge has its own tests (a test that needs the redirect hook sets it).
    settings = Settings(database_url=database_url, http=HttpAddress("127.0.0.1", 0), freeswitch_nodes=nodes,
                        media=media)
    gateway = Gateway(settings, originate_timeout=5)
    gateway.start(http=False)
    return gateway


@pytest.fixture
def gw(database_url, sim):
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    gateway = _gateway(database_url, (node,))
    assert gateway.controller.wait_connected(5), "the gateway did not connect to the simulator"
    yield gateway
    gateway.stop()
    models.database.initialize(None)


@pytest.fixture
def client(gw):
    return gw.app.test_client()


@pytest.fixture
def account_a(gw):
    return Account.create(name="acme", region="US", default_caller_id=CALLER_ID,
                          default_socket_url=DEFAULT_SOCKET, balance=Decimal("10"))


@pytest.fixture
def account_b(gw):
    return Account.create(name="globex", region="IN", default_caller_id="+919812345678",
                          default_socket_url="wss://globex.example.com/bot", balance=Decimal("10"))


@pytest.fixture
def key_a(account_a):
    return create_key(account_a)[1]


@pytest.fixture
def key_b(account_b):
    return create_key(account_b)[1]


def headers(secret: str) -> dict:
    return {"X-API-KEY": secret}


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def make_agent(account, key="akylai", name="Akylai", driver="websocket",
               driver_ref="wss://agents.example.com/akylai", **fields) -> Agent:
    return Agent.create(account=account, key=key, name=name, driver=driver, driver_ref=driver_ref, **fields)
