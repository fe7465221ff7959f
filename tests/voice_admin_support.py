"""Fixtures of the voice-agent admin tests: account A with two autonomous agents (the
owners ``one`` and ``two``) and keys of each isolation level, account B with its own key.

Import them with ``from voice_admin_support import *``.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import api_support
from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import bearer, make_agent
from gateway.auth.keys import create_key

__all__ = [*api_support.__all__, "PREFIX", "keys", "new_agent", "owners"]

PREFIX = "/api/agent-api/voice"


@pytest.fixture
def owners(account_a):
    """The autonomous agents whose keys build voice agents (rows of their own)."""
    return SimpleNamespace(one=make_agent(account_a, "ops-one", "Ops one"),
                           two=make_agent(account_a, "ops-two", "Ops two"))


@pytest.fixture
def keys(account_a, account_b, owners):
    """Bearer headers: ``one``/``two`` (owner keys, default scopes), ``all`` (owner one
    with voice:read:all only), ``account`` (account-wide), ``read`` (owner one, voice:read
    only), ``none`` (owner one, no voice scope), ``b`` (account B)."""
    def key(account, scopes=None, owner=None):
        return bearer(create_key(account, scopes, owner_agent=owner)[1])

    return SimpleNamespace(
        one=key(account_a, owner=owners.one), two=key(account_a, owner=owners.two),
        all=key(account_a, ["voice:read:all"], owner=owners.one), account=key(account_a),
        read=key(account_a, ["voice:read"], owner=owners.one),
        none=key(account_a, ["calls:read"], owner=owners.one), b=key(account_b))


def new_agent(client, auth, **fields):
    """Create a voice agent through the surface; its body."""
    body = {"name": "Sales Bot", "driver_ref": "agent_0123abc", **fields}
    response = client.post(f"{PREFIX}/agents", json=body, headers=auth)
    assert response.status_code == 201, response.json
    return response.json
