"""Customer URLs refused where they are given: ``POST /api/calls`` (``webhook_url``,
``socket_url``), ``POST /api/calls/redirect`` (``media_server``), a routing webhook's
answer, and the admin CLI (``accounts create|set``, ``numbers add``, ``agents create``), with
the same policy as at delivery and connect time, the operator's allowlist included."""
from __future__ import annotations

import pytest

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import Status, headers
from gateway import net_policy
from gateway.models import Account, Agent, Call, PhoneNumber
from gateway.webhooks.routing import parse_answer
from net_support import LOOPBACK_HOSTS, fake_resolver
from test_admin_cli import cli  # noqa: F401 -- fixture

INTERNAL_WEBHOOKS = [
    "http://10.1.2.3/route", "http://169.254.169.254/latest/meta-data/", "http://127.0.0.2/hook",
    "https://[::1]/hook", "http://2130706433/x", "http://localhost:8080/x", "http://192.168.1.10/x",
    "http://100.64.0.1/x", "http://[fd00::1]/x", "http://0/x", "http://user@10.0.0.1/x",
]
INTERNAL_BOTS = [f"ws://{host}:9000/bot" for host in LOOPBACK_HOSTS] + [
    "wss://127.0.0.1/bot", "ws://evil.example.com@127.0.0.1/", "ws://10.0.0.1/bot", "wss://169.254.169.254/x",
]


def place(client, key, **body):
    body.setdefault("destination_number", "+12125550101")
    return client.post("/api/calls", json=body, headers=headers(key))


@pytest.mark.parametrize("url", INTERNAL_WEBHOOKS)
def test_place_refuses_an_internal_webhook_url(client, key_a, url):
    response = place(client, key_a, webhook_url=url)
    assert response.status_code == 400
    error = response.json["error"]
    assert error.startswith(f"webhook_url: {url!r}: ") and error.endswith("; refused"), error
    assert list(response.json) == ["error"]
    assert Call.select().count() == 0


@pytest.mark.parametrize("url", INTERNAL_BOTS)
def test_place_refuses_an_internal_socket_url(client, key_a, url):
    response = place(client, key_a, socket_url=url)
    assert response.status_code == 400, response.json
    assert response.json["error"].startswith("socket_url: ") and response.json["error"].endswith("; refused")
    assert Call.select().count() == 0


def test_names_are_resolved_when_given(client, key_a, monkeypatch):
    monkeypatch.setattr(net_policy.policy, "resolver", fake_resolver({
        "hooks.inside.test": ["10.20.30.40"], "bots.inside.test": ["93.184.215.14", "127.0.0.1"],
        "hooks.public.test": ["93.184.215.14"]}))
    response = place(client, key_a, webhook_url="https://hooks.inside.test/route")
    assert response.json == {"error": "webhook_url: 'https://hooks.inside.test/route': hooks.inside.test resolves"
                                      " to 10.20.30.40, a private address; refused"}
    response = place(client, key_a, socket_url="wss://bots.inside.test/media")
    assert response.status_code == 400 and "resolves to 127.0.0.1, a loopback address" in response.json["error"]
    # A public name is accepted, and so is one that does not resolve yet (the connection decides).
    assert place(client, key_a, webhook_url="https://hooks.public.test/route").status_code == 200
    assert place(client, key_a, socket_url="wss://not-yet.public.test/media").status_code == 200


def test_the_allowlist_applies_at_input(client, key_a, loopback_allowed):
    assert place(client, key_a, webhook_url="http://127.0.0.1:8080/route").status_code == 200
    assert place(client, key_a, socket_url="ws://0x7f000001:9000/bot").status_code == 200
    assert place(client, key_a, webhook_url="http://127.0.0.2/route").status_code == 400


@pytest.mark.parametrize("url", ["ws://127.1:9000/bot", "wss://169.254.169.254/x", "ws://[::ffff:10.0.0.1]/"])
def test_redirect_refuses_an_internal_media_server(client, gw, key_a, url):
    call_uuid = place(client, key_a, destination_number="+12125550480").json["call_uuid"]  # rings on
    gw.controller.wait_status(call_uuid, [Status.RINGING], 5)
    response = client.post("/api/calls/redirect", json={"call_uuid": call_uuid, "media_server": url},
                           headers=headers(key_a))
    assert response.status_code == 400
    assert response.json["error"].startswith(f"media_server: {url!r}: ")
    assert Call.get_by_id(call_uuid).socket_url != url
    client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a))
    gw.controller.wait_status(call_uuid, FINAL, 5)


def test_a_routing_answer_naming_an_internal_bot_falls_back_to_the_default():
    decision = parse_answer(200, b'{"action": "connect", "socket_url": "ws://2130706433:6379/"}')
    assert decision.action == "default"
    assert decision.detail == ("connect: socket_url 'ws://2130706433:6379/': 2130706433 resolves to 127.0.0.1,"
                               " a loopback address; refused")
    assert parse_answer(200, b'{"action": "connect", "socket_url": "wss://93.184.215.14/m"}').action == "connect"


# -- the admin CLI ---------------------------------------------------------------------------------


@pytest.fixture
def acme(cli):  # noqa: F811
    cli("accounts", "create", "acme")
    return Account.get(Account.name == "acme")


@pytest.mark.parametrize("option, url", [
    ("--webhook-url", "http://10.1.2.3/route"), ("--webhook-url", "http://169.254.169.254/latest/meta-data/"),
    ("--webhook-url", "http://127.0.0.2/x"), ("--socket-url", "ws://127.1:9000/bot"),
    ("--socket-url", "wss://[::1]/bot"), ("--socket-url", "ws://localhost/bot"),
])
def test_accounts_refuse_internal_urls(cli, acme, option, url):  # noqa: F811
    error = cli.fails("accounts", "set", "acme", option, url, match=r"; refused$")
    assert repr(url) in error
    assert Account.get_by_id(acme.id).default_webhook_url is None
    assert Account.get_by_id(acme.id).default_socket_url is None
    cli.fails("accounts", "create", "globex", option, url, match=r"; refused$")
    assert not Account.select().where(Account.name == "globex").exists()


@pytest.mark.parametrize("option, url", [
    ("--webhook-url", "http://10.1.2.3/route"), ("--webhook-url", "http://169.254.169.254/x"),
    ("--webhook-url", "http://127.0.0.2/x"), ("--socket-url", "ws://0177.0.0.1/bot"),
])
def test_numbers_add_refuses_internal_urls(cli, acme, option, url):  # noqa: F811
    cli.fails("numbers", "add", "acme", "+14155550123", option, url, match=r"resolves to .*; refused$")
    assert PhoneNumber.select().count() == 0


def test_agents_create_refuses_an_internal_websocket_ref(cli, acme):  # noqa: F811
    cli.fails("agents", "create", "acme", "bot", "--name", "Bot", "--driver", "websocket",
              "--ref", "ws://10.0.0.7:8000/agent", match="10.0.0.7, a private address; refused")
    assert Agent.select().count() == 0


def test_the_cli_uses_the_operators_allowlist(cli, acme, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GATEWAY_OUTBOUND_ALLOWLIST", "10.1.2.0/24")
    cli("accounts", "set", "acme", "--webhook-url", "http://10.1.2.3/route")
    cli("numbers", "add", "acme", "+14155550123", "--socket-url", "ws://10.1.2.4:9000/bot")
    assert Account.get_by_id(acme.id).default_webhook_url == "http://10.1.2.3/route"
    cli.fails("accounts", "set", "acme", "--webhook-url", "http://10.1.3.3/route", match="private address")
    monkeypatch.delenv("GATEWAY_OUTBOUND_ALLOWLIST")
    monkeypatch.setenv("GATEWAY_WEBHOOK_ALLOWLIST", "10.1.2.0/24")  # the former name
    cli("accounts", "set", "acme", "--socket-url", "ws://10.1.2.5/bot")
    monkeypatch.delenv("GATEWAY_WEBHOOK_ALLOWLIST")
    cli.fails("accounts", "set", "acme", "--socket-url", "ws://10.1.2.5/bot", match="private address")
    assert net_policy.policy.allowlist == ()  # a command's allowlist does not outlive it
