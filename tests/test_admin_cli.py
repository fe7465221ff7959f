"""The admin commands, run in-process through an argparse parser, on both databases."""
import argparse
import io
import json
import re
from decimal import Decimal

import pytest

from gateway import models
from gateway.admin_cli import add_subparsers
from gateway.auth.keys import DEFAULT_SCOPES, AuthFailureReason, authenticate_pair, authenticate_secret
from gateway.models import Account, Agent, ApiKey, PhoneNumber
from cli_support import cli  # noqa: F401 -- fixture

PK_RE = re.compile(r"pk_live_[A-Za-z0-9_-]{24}")
SK_RE = re.compile(r"sk_live_[A-Za-z0-9_-]{43,}")


def build_parser():
    parser = argparse.ArgumentParser(prog="voicegw")
    parser.add_argument("--config")
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture
def acme(cli):
    cli("accounts", "create", "acme", "--region", "IN", "--timezone", "Asia/Kolkata", "--currency", "INR")
    return Account.get(Account.name == "acme")


# -- running ------------------------------------------------------------------


def test_the_models_stay_bound_to_the_callers_database(cli, database):
    cli("accounts", "list")
    assert models.database.obj is database
    cli("accounts", "show", "nope", status=2)
    assert models.database.obj is database


def test_a_database_failure_is_one_line_and_status_1(monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/voicegw")
    args = build_parser().parse_args(["accounts", "list"])
    assert args.func(args) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("voicegw: error: database error:") and err.count("\n") == 1
    assert "pw" not in err.replace("voicegw", "")


def test_bad_settings_are_refused(monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "mysql://db/voicegw")
    args = build_parser().parse_args(["accounts", "list"])
    assert args.func(args) == 2
    assert "unsupported database URL scheme" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["numbers", "add", "acme", "+14155550123"],  # no target
        ["numbers", "add", "acme", "+14155550123", "--agent", "a", "--webhook-url", "https://x"],
        ["agents", "create", "acme", "bot", "--name", "Bot", "--type", "sideways"],
        ["agents", "create", "acme", "bot"],  # --name is required
        ["accounts", "frobnicate"],
        ["keys"],
    ],
)
def test_malformed_command_lines_exit_2(cli, argv):
    with pytest.raises(SystemExit) as excinfo:
        cli.parser.parse_args(argv)
    assert excinfo.value.code == 2


# -- accounts -----------------------------------------------------------------


def test_accounts_create(cli):
    out = cli("accounts", "create", "acme", "--region", "in", "--timezone", "Asia/Kolkata",
              "--currency", "inr", "--balance", "1500.25", "--caller-id", "9812345678",
              "--socket-url", "wss://bot.example.com/media", "--webhook-url", "https://hooks.example.com/r")
    account = Account.get(Account.name == "acme")
    assert f"created account {account.id} (acme)" in out
    assert account.webhook_secret in out
    assert (account.region, account.timezone, account.currency) == ("IN", "Asia/Kolkata", "INR")
    assert account.balance == Decimal("1500.2500")
    assert account.default_caller_id == "+919812345678"
    assert account.default_socket_url == "wss://bot.example.com/media"
    assert account.default_webhook_url == "https://hooks.example.com/r"
    assert (account.status, account.api_enabled, account.rate_limit_per_minute) == ("active", True, None)


def test_accounts_create_json_and_defaults(cli):
    doc = cli.json("accounts", "create", "globex")
    account = Account.get_by_id(doc["id"])
    assert doc["name"] == "globex"
    assert (doc["region"], doc["timezone"], doc["currency"], doc["balance"]) == ("US", "UTC", "USD", "0.0000")
    assert doc["webhook_secret"] == account.webhook_secret
    assert doc["webhook_secret"].startswith("whsec_")
    assert (doc["rate_limit_per_minute"], doc["rate_limits"]) == (None, {})  # each surface's default
    assert doc["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--region", "XX"], "unknown region 'XX'"),
        (["--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--timezone", "../../etc/passwd"], "unknown time zone"),
        (["--currency", "RUPEES"], "currency 'RUPEES' is invalid"),
        (["--balance", "lots"], "balance 'lots' is not a number"),
        (["--balance", "NaN"], "is not a number"),
        (["--balance", "-5"], "is negative"),
        (["--balance", "1.23456"], "more than 4 decimal places"),
        (["--balance", "1e12"], "too large"),
        (["--caller-id", "12"], "'12' is too short for a number in region US"),
        (["--socket-url", "https://not-a-socket"], "socket URL 'https://not-a-socket' is not a valid URL"),
        (["--webhook-url", "ftp://x"], "webhook URL 'ftp://x' is not a valid URL"),
    ],
)
def test_accounts_create_bad_input(cli, options, message):
    cli.fails("accounts", "create", "acme", *options, match=re.escape(message))
    assert Account.select().count() == 0


def test_accounts_create_bad_names(cli, acme):
    cli.fails("accounts", "create", "acme", match="an account named 'acme' already exists")
    cli.fails("accounts", "create", "ACME", match="an account named 'acme' already exists")
    cli.fails("accounts", "create", "   ", match="the account name is empty")
    cli.fails("accounts", "create", "12345", match="all digits")
    assert Account.select().count() == 1


def test_accounts_list(cli):
    assert cli("accounts", "list").strip() == "(no accounts)"
    assert cli.json("accounts", "list") == {"accounts": []}
    cli("accounts", "create", "acme", "--balance", "10.5")
    cli("accounts", "create", "globex", "--region", "IN", "--currency", "INR")

    lines = cli("accounts", "list").splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "API", "REGION", "TIMEZONE", "BALANCE", "RATE/MIN"]
    assert lines[1].split() == ["1", "acme", "active", "yes", "US", "UTC", "10.5000", "USD", "default"]
    assert lines[2].split()[1] == "globex"
    doc = cli.json("accounts", "list")
    assert [a["name"] for a in doc["accounts"]] == ["acme", "globex"]
    assert all("webhook_secret" not in a for a in doc["accounts"])


def test_accounts_show(cli, acme):
    cli("accounts", "set", "acme", "--elevenlabs-key", "xi_0123456789abcdef")
    out = cli("accounts", "show", "acme")
    assert re.search(r"^name: +acme$", out, re.M)
    assert acme.webhook_secret in out
    assert "…cdef" in out and "xi_0123456789abcdef" not in out
    by_id = cli.json("accounts", "show", str(acme.id))
    assert by_id["name"] == "acme"
    assert by_id["webhook_secret"] == acme.webhook_secret
    assert by_id["elevenlabs_api_key"] == "…cdef"
    assert by_id["counts"] == {"active_keys": 0, "agents": 0, "numbers": 0}
    cli.fails("accounts", "show", "globex", match="no account 'globex'")
    cli.fails("accounts", "show", "999", match="no account '999'")


def test_suspend_and_activate(cli, acme):
    _, secret = _create_key(cli, "acme")
    assert "account 1 (acme) suspended" in cli("accounts", "suspend", "acme")
    assert Account.get_by_id(acme.id).status == "suspended"
    assert authenticate_secret(secret).reason == AuthFailureReason.ACCOUNT_SUSPENDED
    assert cli.json("accounts", "suspend", "acme")["changed"] is False

    doc = cli.json("accounts", "activate", str(acme.id))
    assert (doc["status"], doc["changed"]) == ("active", True)
    assert authenticate_secret(secret)


def test_accounts_set(cli, acme):
    doc = cli.json("accounts", "set", "acme", "--api-enabled", "false", "--balance", "99.9",
                   "--rate-limit", "60", "--vapi-key", "vapi-secret-1234", "--socket-url", "ws://93.184.215.14:9000/bot",
                   "--caller-id", "+91 98123 45678")
    assert doc["changed"] == ["api_enabled", "balance", "default_caller_id", "default_socket_url",
                              "rate_limit_per_minute", "vapi_api_key"]
    assert doc["vapi_api_key"] == "…1234"
    account = Account.get_by_id(acme.id)
    assert account.api_enabled is False
    assert account.balance == Decimal("99.9")
    assert account.rate_limit_per_minute == 60
    assert account.vapi_api_key == "vapi-secret-1234"  # a credential we must present: stored as is
    assert account.default_caller_id == "+919812345678"

    # '' clears an optional setting.
    cli("accounts", "set", "acme", "--vapi-key", "", "--socket-url", "")
    account = Account.get_by_id(acme.id)
    assert account.vapi_api_key is None and account.default_socket_url is None
    assert "updated account 1 (acme): api_enabled" in cli("accounts", "set", "acme", "--api-enabled", "yes")


def test_api_disabled_refuses_the_accounts_keys(cli, acme):
    pk, secret = _create_key(cli, "acme")
    cli("accounts", "set", "acme", "--api-enabled", "false")
    assert authenticate_pair(pk, secret).reason == AuthFailureReason.API_DISABLED
    cli("accounts", "set", "acme", "--api-enabled", "true")
    assert authenticate_pair(pk, secret)


@pytest.mark.parametrize(
    "options, message",
    [
        ([], "nothing to set"),
        (["--api-enabled", "maybe"], "--api-enabled 'maybe' is invalid"),
        (["--rate-limit", "0"], "--rate-limit '0' is invalid"),
        (["--rate-limit", "fast"], "--rate-limit 'fast' is invalid"),
        (["--balance", "-1"], "is negative"),
        (["--webhook-url", "hooks.example.com"], "is not a valid URL"),
        (["--caller-id", "not a number"], "contains letters"),
        (["--elevenlabs-key", "two words"], "looks malformed"),
    ],
)
def test_accounts_set_bad_input(cli, acme, options, message):
    cli.fails("accounts", "set", "acme", *options, match=re.escape(message))
    assert Account.get_by_id(acme.id).rate_limit_per_minute is None


def test_accounts_set_rate_limits_on_every_surface_or_per_surface(cli, acme):
    cli("accounts", "set", "acme", "--rate-limit", "300")
    doc = cli.json("accounts", "set", "acme", "--rate-limit", "v1=90,public=500")
    assert (doc["rate_limit_per_minute"], doc["rate_limits"]) == (300, {"v1": 90, "public": 500})
    assert "300,public=500,v1=90" in cli("accounts", "list")
    doc = cli.json("accounts", "set", "acme", "--rate-limit", "public=default")
    assert doc["rate_limits"] == {"v1": 90}
    doc = cli.json("accounts", "set", "acme", "--rate-limit", "default")
    assert (doc["rate_limit_per_minute"], doc["rate_limits"]) == (None, {"v1": 90})
    cli.fails("accounts", "set", "acme", "--rate-limit", "fax=5", match="'fax' is not a surface")
    cli.fails("accounts", "set", "acme", "--rate-limit", "v1=0", match="--rate-limit 'v1=0' is invalid")
    assert Account.get_by_id(acme.id).rate_limits == {"v1": 90}


# -- keys ---------------------------------------------------------------------


def _create_key(cli, account, *options):
    doc = cli.json("keys", "create", account, *options)
    return doc["publishable_key"], doc["secret_key"]


def test_keys_create_prints_both_keys_once(cli, acme):
    out = cli("keys", "create", "acme", "--name", "crm")
    pks, sks = PK_RE.findall(out), SK_RE.findall(out)
    assert len(pks) == len(sks) == 1
    result = authenticate_pair(pks[0], sks[0])
    assert result.account.id == acme.id
    assert result.scopes == frozenset(DEFAULT_SCOPES)
    assert ApiKey.get(ApiKey.publishable_id == pks[0]).name == "crm"
    assert "shown only this once" in out


def test_keys_create_json(cli, acme):
    cli("agents", "create", "acme", "akylai", "--name", "Akylai", "--ref", "wss://bot.example.com/a")
    doc = cli.json("keys", "create", "acme", "--scopes", "voice:read, voice:write", "--agent", "akylai")
    assert PK_RE.fullmatch(doc["publishable_key"]) and SK_RE.fullmatch(doc["secret_key"])
    assert doc["scopes"] == ["voice:read", "voice:write"]
    assert doc["owner_agent"] == "akylai"
    assert doc["secret_key_prefix"] == doc["secret_key"][:12]
    result = authenticate_secret(doc["secret_key"])
    assert result.owner_agent_id == Agent.get(Agent.key == "akylai").id


def test_keys_create_bad_input(cli, acme):
    cli.fails("keys", "create", "acme", "--scopes", "calls:read,calls:delete",
              match=r"unknown scope 'calls:delete'; known scopes: calls:read, calls:write")
    cli.fails("keys", "create", "acme", "--scopes", " , ", match="--scopes is empty")
    cli.fails("keys", "create", "acme", "--agent", "ghost", match="has no agent 'ghost'")
    cli.fails("keys", "create", "nobody", match="no account 'nobody'")
    assert ApiKey.select().count() == 0


def test_keys_list_never_shows_secrets(cli, acme):
    assert "has no keys" in cli("keys", "list", "acme")
    pk, secret = _create_key(cli, "acme", "--name", "first")
    pk2, secret2 = _create_key(cli, "acme", "--scopes", "otp:send")
    cli("keys", "revoke", pk2)
    authenticate_secret(secret)

    out = cli("keys", "list", "acme")
    doc = cli.json("keys", "list", str(acme.id))
    for text in (out, json.dumps(doc)):
        assert secret not in text and secret2 not in text
        assert secret[12:24] not in text
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["PUBLISHABLE", "KEY"]
    assert pk in lines[1] and "default" in lines[1] and "active" in lines[1] and "never" not in lines[1]
    assert pk2 in lines[2] and "otp:send" in lines[2] and "revoked" in lines[2] and "never" in lines[2]
    assert [k["publishable_key"] for k in doc["keys"]] == [pk, pk2]
    assert doc["keys"][0]["last_used_at"] is not None
    assert doc["keys"][1]["revoked_at"] is not None


def test_keys_rotate(cli, acme):
    pk, old = _create_key(cli, "acme")
    out = cli("keys", "rotate", pk)
    (new,) = SK_RE.findall(out)
    assert new != old
    assert authenticate_pair(pk, new).account.id == acme.id
    assert authenticate_pair(pk, old).reason == AuthFailureReason.WRONG_SECRET
    assert authenticate_secret(old).reason == AuthFailureReason.UNKNOWN_KEY

    doc = cli.json("keys", "rotate", pk)
    assert doc["publishable_key"] == pk
    assert authenticate_secret(doc["secret_key"])
    assert not authenticate_secret(new)


def test_keys_revoke(cli, acme):
    pk, secret = _create_key(cli, "acme")
    assert f"revoked key {pk}" in cli("keys", "revoke", pk)
    assert authenticate_secret(secret).reason == AuthFailureReason.KEY_REVOKED
    assert "was already revoked" in cli("keys", "revoke", pk)
    assert cli.json("keys", "revoke", pk)["changed"] is False
    cli.fails("keys", "rotate", pk, match="is revoked; create a new key instead")
    assert authenticate_secret(secret).reason == AuthFailureReason.KEY_REVOKED


def test_keys_unknown_pk(cli, acme):
    cli.fails("keys", "rotate", "pk_live_nope", match="no key 'pk_live_nope'")
    cli.fails("keys", "revoke", "pk_live_nope", match="no key 'pk_live_nope'")


# -- agents -------------------------------------------------------------------


def test_agents_create_and_list(cli, acme):
    out = cli("agents", "create", "acme", "akylai", "--name", "Akylai", "--language", "ky",
              "--ref", "wss://bot.example.com/akylai")
    assert "created agent 'akylai'" in out
    doc = cli.json("agents", "create", "acme", "altai", "--name", "Altai", "--type", "inbound",
                   "--driver", "elevenlabs", "--ref", "agent_01jz8k2m")
    assert (doc["key"], doc["agent_type"], doc["driver"], doc["driver_ref"]) == (
        "altai", "inbound", "elevenlabs", "agent_01jz8k2m")
    cli("agents", "create", "acme", "vasya", "--name", "Vasya", "--language", "ru", "--driver", "vapi",
        "--ref", "3f1c6a3e-8a44-4c47-9b8e-1b2f0c9d7e21")

    agent = Agent.get(Agent.key == "akylai")
    assert (agent.account_id, agent.name, agent.language, agent.agent_type, agent.driver, agent.active) == (
        acme.id, "Akylai", "ky", "outbound", "websocket", True)
    lines = cli("agents", "list", "acme").splitlines()
    assert [line.split()[0] for line in lines] == ["KEY", "akylai", "altai", "vasya"]
    listed = cli.json("agents", "list", "acme")
    assert [a["key"] for a in listed["agents"]] == ["akylai", "altai", "vasya"]


def test_the_same_agent_key_in_two_accounts(cli, acme):
    cli("accounts", "create", "globex")
    for account in ("acme", "globex"):
        cli("agents", "create", account, "akylai", "--name", "Akylai", "--ref", "wss://bot.example.com/a")
    assert Agent.select().where(Agent.key == "akylai").count() == 2
    globex_agents = cli.json("agents", "list", "globex")["agents"]
    assert [(a["key"], a["account_id"]) for a in globex_agents] == [
        ("akylai", Account.get(Account.name == "globex").id)]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["akylai", "--name", "Again", "--ref", "wss://b.example.com"], "already has an agent 'akylai'"),
        (["Bad Key", "--name", "X", "--ref", "wss://b.example.com"], "agent key 'Bad Key' is invalid"),
        (["x", "--name", " ", "--ref", "wss://b.example.com"], "the agent name is empty"),
        (["x", "--name", "X", "--language", "english!", "--ref", "wss://b"], "language 'english!' is invalid"),
        (["x", "--name", "X"], "the websocket driver needs a reference"),
        (["x", "--name", "X", "--driver", "vapi"], "the vapi driver needs a reference: the Vapi assistant id"),
        (["x", "--name", "X", "--ref", "http://b.example.com"], "is not a valid URL"),
        (["x", "--name", "X", "--driver", "elevenlabs", "--ref", "a b"], "elevenlabs id 'a b' is invalid"),
    ],
)
def test_agents_create_bad_input(cli, acme, argv, message):
    cli("agents", "create", "acme", "akylai", "--name", "Akylai", "--ref", "wss://bot.example.com/a")
    cli.fails("agents", "create", "acme", *argv, match=re.escape(message))
    assert Agent.select().count() == 1


# -- numbers ------------------------------------------------------------------


def test_numbers_add_each_route(cli, acme):
    cli("agents", "create", "acme", "akylai", "--name", "Akylai", "--ref", "wss://bot.example.com/a")
    out = cli("numbers", "add", "acme", "9812345678", "--socket-url", "wss://bot.example.com/media")
    assert "added +919812345678 to account 1 (acme): bot → wss://bot.example.com/media" in out
    doc = cli.json("numbers", "add", "acme", "919812345679", "--agent", "akylai")
    assert (doc["e164"], doc["route"], doc["agent"]) == ("+919812345679", "agent", "akylai")
    cli("numbers", "add", "acme", "+44 20 7946 0958", "--webhook-url", "https://hooks.example.com/route")

    bot = PhoneNumber.get(PhoneNumber.e164 == "+919812345678")
    assert (bot.route, bot.socket_url, bot.agent_id, bot.webhook_url) == (
        "bot", "wss://bot.example.com/media", None, None)
    agent = PhoneNumber.get(PhoneNumber.e164 == "+919812345679")
    assert (agent.route, agent.socket_url, agent.agent.key, agent.webhook_url) == ("agent", None, "akylai", None)
    hook = PhoneNumber.get(PhoneNumber.e164 == "+442079460958")
    assert (hook.route, hook.webhook_url, hook.account_id) == ("webhook", "https://hooks.example.com/route", acme.id)


def test_numbers_list_and_remove(cli, acme):
    cli("accounts", "create", "globex")
    assert cli("numbers", "list").strip() == "(no numbers)"
    cli("numbers", "add", "acme", "9812345678", "--socket-url", "wss://a.example.com")
    cli("numbers", "add", "globex", "650 253 0000", "--webhook-url", "https://g.example.com")

    lines = cli("numbers", "list").splitlines()
    assert lines[0].split() == ["NUMBER", "ACCOUNT", "ROUTE", "TARGET", "ACTIVE"]
    assert lines[1].split() == ["+919812345678", "acme", "bot", "wss://a.example.com", "yes"]
    assert lines[2].split() == ["+16502530000", "globex", "webhook", "https://g.example.com", "yes"]
    assert [n["e164"] for n in cli.json("numbers", "list", "globex")["numbers"]] == ["+16502530000"]
    cli("accounts", "create", "initech")
    assert "account 3 (initech) has no numbers" in cli("numbers", "list", "3")

    doc = cli.json("numbers", "remove", "+1 650-253-0000")
    assert (doc["e164"], doc["removed"]) == ("+16502530000", True)
    assert [n.e164 for n in PhoneNumber.select()] == ["+919812345678"]
    cli.fails("numbers", "remove", "+16502530000", match=r"no number \+16502530000")
    cli.fails("numbers", "remove", "9812345678", match="not in international form")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["acme", "+919812345678", "--socket-url", "wss://b.example.com"], "is already in account 1 (acme)"),
        (["globex", "9812345678", "--socket-url", "wss://b.example.com"], "is not a valid number in region US"),
        (["globex", "+91 98123 45678", "--socket-url", "wss://b.example.com"], "is already in account 1 (acme)"),
        (["acme", "12", "--socket-url", "wss://b.example.com"], "'12' is too short for a number in region IN"),
        (["acme", "call me", "--socket-url", "wss://b.example.com"], "contains letters"),
        (["acme", "9812345670", "--socket-url", "https://b.example.com"], "is not a valid URL"),
        (["acme", "9812345670", "--webhook-url", "wss://b.example.com"], "is not a valid URL"),
        (["acme", "9812345670", "--agent", "ghost"], "has no agent 'ghost'"),
        (["nobody", "9812345670", "--agent", "ghost"], "no account 'nobody'"),
    ],
)
def test_numbers_add_bad_input(cli, acme, argv, message):
    cli("accounts", "create", "globex")
    cli("numbers", "add", "acme", "9812345678", "--socket-url", "wss://a.example.com")
    cli.fails("numbers", "add", *argv, match=re.escape(message))
    assert PhoneNumber.select().count() == 1


# -- native AI providers (set-voice) ------------------------------------------


def test_set_voice_keys_from_a_file_or_stdin_never_printed(cli, acme, tmp_path, monkeypatch):
    key_file = tmp_path / "xi.key"
    key_file.write_text("xi-secret-key-0001\n")
    out = cli("accounts", "set-voice", "acme", "--elevenlabs-agent-id", "agent_abc",
              "--elevenlabs-api-key-file", str(key_file))
    assert out.strip() == "updated account 1 (acme): elevenlabs_agent_id, elevenlabs_api_key"
    monkeypatch.setattr("sys.stdin", io.StringIO("vapi-secret-key-0002\n"))
    doc = cli.json("accounts", "set-voice", "acme", "--vapi-assistant-id", "asst-1", "--vapi-api-key-file", "-")
    assert doc["changed"] == ["vapi_api_key", "vapi_assistant_id"]
    account = Account.get_by_id(acme.id)
    assert (account.elevenlabs_agent_id, account.elevenlabs_api_key) == ("agent_abc", "xi-secret-key-0001")
    assert (account.vapi_assistant_id, account.vapi_api_key) == ("asst-1", "vapi-secret-key-0002")
    shown = cli("accounts", "show-voice", "acme")
    assert shown.splitlines()[:2] == ["ElevenLabs: agent id agent_abc, API key set (…0001)",
                                      "Vapi: assistant id asst-1, API key set (…0002)"]
    doc = cli.json("accounts", "show-voice", "acme")
    assert doc == {"account_id": acme.id, "elevenlabs": {"agent_id": "agent_abc", "api_key": "…0001"},
                   "vapi": {"assistant_id": "asst-1", "api_key": "…0002"}, "numbers": []}
    for argv in (["accounts", "show-voice", "acme"], ["accounts", "show", "acme"], ["accounts", "list"]):
        printed = cli(*argv) + cli(*argv, "--json")
        assert "xi-secret-key" not in printed and "vapi-secret-key" not in printed, argv
    # '' clears an id, an empty file a key.
    (tmp_path / "empty").write_text("\n")
    cli("accounts", "set-voice", "acme", "--elevenlabs-agent-id", "", "--elevenlabs-api-key-file",
        str(tmp_path / "empty"))
    account = Account.get_by_id(acme.id)
    assert (account.elevenlabs_agent_id, account.elevenlabs_api_key, account.vapi_assistant_id) == (
        None, None, "asst-1")
    assert cli("accounts", "show-voice", "acme").splitlines()[0] == "ElevenLabs: agent id -, API key not set"


@pytest.mark.parametrize("argv, message", [
    (["--elevenlabs-agent-id", "bad id"], "--elevenlabs-agent-id 'bad id' is invalid; expected 1-128 characters"),
    (["--vapi-assistant-id", "x" * 129], "--vapi-assistant-id 'x+' is invalid"),
    (["--elevenlabs-api-key-file", "/nonexistent/key"], "--elevenlabs-api-key-file '/nonexistent/key': No such"),
    (["--elevenlabs-api-key-file", "-", "--vapi-api-key-file", "-"], "only one key can be read from standard input"),
    ([], "nothing to set"),
])
def test_set_voice_bad_input(cli, acme, argv, message):
    cli.fails("accounts", "set-voice", "acme", *argv, match=message)
    account = Account.get_by_id(acme.id)
    assert account.elevenlabs_agent_id is account.vapi_assistant_id is account.elevenlabs_api_key is None


def test_set_voice_refuses_a_malformed_key_file(cli, acme, tmp_path):
    (tmp_path / "two").write_text("one key\nanother\n")
    cli.fails("accounts", "set-voice", "acme", "--vapi-api-key-file", str(tmp_path / "two"),
              match="the Vapi API key looks malformed")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    cli.fails("accounts", "set-voice", "acme", "--vapi-api-key-file", str(tmp_path / "binary"),
              match="is not UTF-8 text")
    assert Account.get_by_id(acme.id).vapi_api_key is None


def test_numbers_set_voice_and_a_number_routed_to_a_provider(cli, acme):
    out = cli("numbers", "add", "acme", "9812345678", "--socket-url", "elevenlabs")
    assert "bot → elevenlabs" in out
    cli("numbers", "add", "acme", "9812345679", "--socket-url", "vapi&asst-9")
    doc = cli.json("numbers", "set-voice", "+919812345678", "--elevenlabs-agent-id", "agent_num")
    assert (doc["elevenlabs_agent_id"], doc["vapi_assistant_id"], doc["changed"]) == (
        "agent_num", None, ["elevenlabs_agent_id"])
    shown = cli("accounts", "show-voice", "acme").splitlines()
    assert shown[2].split() == ["NUMBER", "ELEVENLABS", "AGENT", "ID", "VAPI", "ASSISTANT", "ID"]
    assert shown[3].split() == ["+919812345678", "agent_num", "-"]
    assert len(shown) == 4  # the other number has no ids of its own
    cli("numbers", "set-voice", "+919812345678", "--elevenlabs-agent-id", "")
    assert PhoneNumber.get(PhoneNumber.e164 == "+919812345678").elevenlabs_agent_id is None
    cli.fails("numbers", "set-voice", "+919812345670", "--vapi-assistant-id", "a", match=r"no number \+919812345670")
    cli.fails("numbers", "set-voice", "+919812345678", match="nothing to set")
    cli.fails("numbers", "set-voice", "+919812345678", "--vapi-assistant-id", "a b", match="is invalid")
    cli.fails("numbers", "add", "acme", "9812345670", "--socket-url", "openai", match="'openai' is invalid")
    cli.fails("accounts", "set", "acme", "--socket-url", "elevenlabs&", match="the id after '&' is invalid")
    assert cli.json("accounts", "set", "acme", "--socket-url", "vapi")["default_socket_url"] == "vapi"


# -- webhook secrets ----------------------------------------------------------


def test_webhook_secret_rotate(cli, acme):
    old = acme.webhook_secret
    out = cli("webhook-secret", "rotate", "acme")
    account = Account.get_by_id(acme.id)
    assert account.webhook_secret in out and account.webhook_secret != old
    assert account.webhook_secret_previous == old
    assert account.webhook_secrets() == [account.webhook_secret, old]
    assert "the previous secret stays valid until" in out

    doc = cli.json("webhook-secret", "rotate", str(acme.id))
    account = Account.get_by_id(acme.id)
    assert doc["webhook_secret"] == account.webhook_secret
    assert doc["previous_valid_until"].endswith("Z")
    assert account.webhook_secret_previous not in (old, doc["webhook_secret"])
    cli.fails("webhook-secret", "rotate", "nobody", match="no account 'nobody'")


# -- every command speaks JSON ------------------------------------------------


def test_every_command_prints_json(cli):
    commands = [
        ["accounts", "create", "acme", "--region", "IN"],
        ["accounts", "list"],
        ["accounts", "show", "acme"],
        ["accounts", "set", "acme", "--rate-limit", "30"],
        ["accounts", "suspend", "acme"],
        ["accounts", "activate", "acme"],
        ["agents", "create", "acme", "akylai", "--name", "Akylai", "--ref", "wss://b.example.com"],
        ["agents", "list", "acme"],
        ["keys", "create", "acme"],
        ["keys", "list", "acme"],
        ["numbers", "add", "acme", "9812345678", "--agent", "akylai"],
        ["numbers", "list"],
        ["numbers", "list", "acme"],
        ["webhook-secret", "rotate", "acme"],
        ["accounts", "set-voice", "acme", "--elevenlabs-agent-id", "agent_abc"],
        ["accounts", "show-voice", "acme"],
        ["numbers", "set-voice", "+919812345678", "--vapi-assistant-id", "asst-1"],
    ]
    for argv in commands:
        assert isinstance(cli.json(*argv), dict), argv
    pk = ApiKey.get().publishable_id
    for argv in (["keys", "rotate", pk], ["keys", "revoke", pk], ["numbers", "remove", "+919812345678"]):
        assert isinstance(cli.json(*argv), dict), argv
