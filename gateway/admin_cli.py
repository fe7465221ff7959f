"""Admin commands: accounts, API keys, agents, phone numbers, webhook secrets.

::

    voicegw accounts create NAME [--region IN] [--timezone Asia/Kolkata] [--currency INR] [--balance 500]
    voicegw accounts list | show ACCOUNT | suspend ACCOUNT | activate ACCOUNT
    voicegw accounts set ACCOUNT [--api-enabled false] [--rate-limit 60] [--elevenlabs-key …] …
                         [--transfer-numbers +1,1000-1099] [--transfer-sip-domains pbx.acme.com]
                         [--on-transfer-failure bot|hangup]
    voicegw accounts set-voice ACCOUNT [--elevenlabs-agent-id ID] [--elevenlabs-api-key-file FILE|-]
                               [--vapi-assistant-id ID] [--vapi-api-key-file FILE|-]
    voicegw accounts show-voice ACCOUNT
    voicegw keys create ACCOUNT [--scopes calls:read,calls:write] [--name …] [--agent KEY]
    voicegw keys list ACCOUNT | rotate PK | revoke PK
    voicegw agents create ACCOUNT KEY --name … [--language en] [--type outbound] [--driver vapi --ref …]
    voicegw agents list ACCOUNT
    voicegw numbers add ACCOUNT NUMBER (--socket-url URL | --agent KEY | --webhook-url URL)
    voicegw numbers list [ACCOUNT] | remove NUMBER
    voicegw numbers set-voice NUMBER [--elevenlabs-agent-id ID] [--vapi-assistant-id ID]
    voicegw webhook-secret rotate ACCOUNT

ACCOUNT is an account id or name. Every command takes ``--json`` and then
prints one JSON document instead of text. Bad input exits with status 2 and
one line on stderr; a database failure exits with 1.

``set-voice`` configures the native AI providers a bare ``elevenlabs``/``vapi`` media
target talks to (``gateway.calls.bot_target``): API keys are read from a file or stdin
(``-``), never from the command line (where the process list shows them), and are never
printed back: ``show-voice`` says whether each is set and shows its last four characters
only.

``gateway.cli`` mounts these with ``add_subparsers``. Each command is a small
handler ``(args) -> Output`` that runs inside one transaction (``gateway.cli_common``).
"""
from __future__ import annotations

import re
import sys
import zoneinfo
from decimal import Decimal, InvalidOperation
from functools import partial

from peewee import fn

from gateway import cli_common as cli
from gateway.auth import keys
from gateway.calls.bot_target import PROVIDER_SETTINGS
from gateway.calls.transfer_policy import (
    ON_FAILURE_ACTIONS, TransferPolicy, clean_failure_action, clean_number_rules, clean_sip_domains,
)
from gateway.cli_common import CommandError, Output
from gateway.domain import AGENT_DRIVERS, Surface
from gateway.models import (
    AGENT_TYPES,
    Account,
    Agent,
    ApiKey,
    PhoneNumber,
    clean_agent_fields,
    clean_route,
)
from gateway.models.validators import check_media_target, check_provider_ref, check_webhook_url
from gateway.numbering import check_region, normalize, normalize_caller_id

MAX_BALANCE = Decimal(10) ** 10  # DecimalField(max_digits=14, decimal_places=4)
MAX_RATE_LIMIT = 100_000


# -- parser -------------------------------------------------------------------


def add_subparsers(subparsers) -> None:
    """Add the ``accounts``, ``keys``, ``agents``, ``numbers`` and ``webhook-secret`` commands."""
    accounts = cli.group(subparsers, "accounts", "manage accounts")
    p = cli.command(accounts, "create", accounts_create, "create an account")
    p.add_argument("name")
    p.add_argument("--region", default="US", help="ISO country code numbers are read in (default US)")
    p.add_argument("--timezone", default="UTC", help="IANA time zone, e.g. Asia/Kolkata (default UTC)")
    p.add_argument("--currency", default="USD", help="ISO 4217 code of the balance (default USD)")
    p.add_argument("--balance", default="0", help="opening balance (default 0)")
    p.add_argument("--caller-id", help="default caller id number")
    p.add_argument("--socket-url", help="default bot WebSocket URL (ws:// or wss://), or elevenlabs or vapi"
                                        " (their agent from 'accounts set-voice'), or elevenlabs&ID, vapi&ID")
    p.add_argument("--webhook-url", help="default routing/status webhook URL")
    cli.command(accounts, "list", accounts_list, "list accounts")
    p = cli.command(accounts, "show", accounts_show, "show an account, with its webhook secret")
    p.add_argument("account", help="account id or name")
    p = cli.command(accounts, "suspend", partial(accounts_set_status, status="suspended"),
                 "suspend an account: its keys stop working")
    p.add_argument("account", help="account id or name")
    p = cli.command(accounts, "activate", partial(accounts_set_status, status="active"),
                 "reactivate a suspended account")
    p.add_argument("account", help="account id or name")
    p = cli.command(accounts, "set", accounts_set, "change account settings ('' clears an optional one)")
    p.add_argument("account", help="account id or name")
    p.add_argument("--api-enabled", metavar="true|false")
    p.add_argument("--balance")
    p.add_argument("--rate-limit", metavar="N|SURFACE=N,…",
                   help="API requests per minute: N on every surface, or per surface (api=300,v1=90);"
                        " 'default' (or '') for a surface's contract default (README, Rate limits)")
    p.add_argument("--region")
    p.add_argument("--timezone")
    p.add_argument("--currency")
    p.add_argument("--caller-id")
    p.add_argument("--socket-url")
    p.add_argument("--webhook-url")
    p.add_argument("--elevenlabs-key", help="the account's ElevenLabs API key (visible in the process list:"
                                            " prefer 'accounts set-voice --elevenlabs-api-key-file')")
    p.add_argument("--vapi-key", help="the account's Vapi API key (visible in the process list: prefer"
                                      " 'accounts set-voice --vapi-api-key-file')")
    p.add_argument("--transfer-numbers", metavar="RULES",
                   help="where calls may be transferred: E.164 prefixes (+, +1), ranges"
                        " (+14155550100-+14155550199) and extensions (1000, 1000-1099); default +")
    p.add_argument("--transfer-sip-domains", metavar="DOMAINS",
                   help="SIP domains calls may be transferred to (pbx.acme.com, *.acme.com); default none")
    p.add_argument("--on-transfer-failure", metavar="|".join(ON_FAILURE_ACTIONS),
                   help="when a transfer fails (busy, no answer, ...): bot = the call goes back to its bot"
                        " (default), hangup = the call ends with the failure's cause")

    p = cli.command(accounts, "set-voice", accounts_set_voice,
                    "set the native AI providers' agent ids and API keys ('' clears an id, an empty file a key)")
    p.add_argument("account", help="account id or name")
    for setting in PROVIDER_SETTINGS.values():
        p.add_argument(setting.ref_option, metavar="ID",
                       help=f"the {setting.name} {setting.ref_words} a bare '{setting.kind}' media target"
                            " talks to, unless the call's number has its own")
        p.add_argument(setting.key_option, metavar="FILE",
                       help=f"read the account's {setting.name} API key from FILE ('-': standard input)")
    p = cli.command(accounts, "show-voice", accounts_show_voice,
                    "show the native AI providers' settings of an account and its numbers (keys masked)")
    p.add_argument("account", help="account id or name")

    key_group = cli.group(subparsers, "keys", "manage API keys")
    p = cli.command(key_group, "create", keys_create, "create a key; prints its secret, once")
    p.add_argument("account", help="account id or name")
    p.add_argument("--scopes", help=f"comma-separated; default: {','.join(keys.DEFAULT_SCOPES)}")
    p.add_argument("--name", help="a label, e.g. what the key is for")
    p.add_argument("--agent", metavar="KEY", help="owner agent: the key sees only this agent's data")
    p = cli.command(key_group, "list", keys_list, "list an account's keys (never their secrets)")
    p.add_argument("account", help="account id or name")
    p = cli.command(key_group, "rotate", keys_rotate, "give a key a new secret; the old one stops working")
    p.add_argument("publishable_key", metavar="PK")
    p = cli.command(key_group, "revoke", keys_revoke, "revoke a key for good")
    p.add_argument("publishable_key", metavar="PK")

    agents = cli.group(subparsers, "agents", "manage agents")
    p = cli.command(agents, "create", agents_create, "create an agent")
    p.add_argument("account", help="account id or name")
    p.add_argument("key", help="internal key clients use, e.g. akylai")
    p.add_argument("--name", required=True)
    p.add_argument("--language", default="en", help="e.g. en, ru, hi-IN (default en)")
    p.add_argument("--type", dest="agent_type", choices=AGENT_TYPES, default="outbound")
    p.add_argument("--driver", choices=AGENT_DRIVERS, default="websocket")
    p.add_argument("--ref", help="socket URL, ElevenLabs agent id or Vapi assistant id")
    p = cli.command(agents, "list", agents_list, "list an account's agents")
    p.add_argument("account", help="account id or name")

    numbers = cli.group(subparsers, "numbers", "manage phone numbers (DIDs)")
    p = cli.command(numbers, "add", numbers_add, "add a number and route it")
    p.add_argument("account", help="account id or name")
    p.add_argument("number", help="read in the account's region unless it starts with +")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--socket-url", help="stream calls to this bot WebSocket, or to elevenlabs or vapi"
                                             " (their agent from 'set-voice'), or elevenlabs&ID, vapi&ID")
    target.add_argument("--agent", metavar="KEY", help="hand calls to this agent")
    target.add_argument("--webhook-url", help="ask this routing webhook")
    p = cli.command(numbers, "list", numbers_list, "list numbers")
    p.add_argument("account", nargs="?", help="only this account's")
    p = cli.command(numbers, "remove", numbers_remove, "remove a number")
    p.add_argument("number", help="in international form, e.g. +14155550123")
    p = cli.command(numbers, "set-voice", numbers_set_voice,
                    "the agent ids a bare 'elevenlabs'/'vapi' target talks to on this number's calls ('' clears)")
    p.add_argument("number", help="in international form, e.g. +14155550123")
    for setting in PROVIDER_SETTINGS.values():
        p.add_argument(setting.ref_option, metavar="ID",
                       help=f"the {setting.name} {setting.ref_words} for calls to and from this number,"
                            " over the account's")

    webhook = cli.group(subparsers, "webhook-secret", "manage webhook signing secrets")
    p = cli.command(webhook, "rotate", webhook_secret_rotate,
                 "new webhook secret; the previous one stays valid for an overlap window")
    p.add_argument("account", help="account id or name")


# -- accounts -----------------------------------------------------------------


def accounts_create(args) -> Output:
    name = _account_name(args.name)
    region = _region(args.region)
    fields = {
        "name": name,
        "region": region,
        "timezone": _timezone(args.timezone),
        "currency": _currency(args.currency),
        "balance": _money(args.balance),
    }
    if args.caller_id:
        fields["default_caller_id"] = normalize_caller_id(args.caller_id, region)
    if args.socket_url:
        fields["default_socket_url"] = check_media_target(args.socket_url, "socket URL")
    if args.webhook_url:
        fields["default_webhook_url"] = check_webhook_url(args.webhook_url)
    account = Account.create(**fields)
    text = (
        f"created account {cli.label(account)}: region {account.region}, {account.timezone},"
        f" balance {account.balance} {account.currency}\n"
        f"webhook secret: {account.webhook_secret}"
    )
    return Output(_account_doc(account, with_secret=True), text)


def accounts_list(args) -> Output:
    accounts = list(Account.select().order_by(Account.id))
    rows = [
        [str(a.id), a.name, a.status, _yes_no(a.api_enabled), a.region, a.timezone,
         f"{a.balance} {a.currency}", _rate_text(a)]
        for a in accounts
    ]
    text = cli.table(["ID", "NAME", "STATUS", "API", "REGION", "TIMEZONE", "BALANCE", "RATE/MIN"],
                  rows, empty="no accounts")
    return Output({"accounts": [_account_doc(a) for a in accounts]}, text)


def accounts_show(args) -> Output:
    account = cli.find_account(args.account)
    doc = _account_doc(account, with_secret=True)
    doc["counts"] = {
        "active_keys": account.api_keys.where(ApiKey.revoked_at.is_null()).count(),
        "agents": account.agents.count(),
        "numbers": account.phone_numbers.count(),
    }
    lines = [(label, _text_value(doc[field])) for label, field in _ACCOUNT_SHOW_FIELDS]
    lines += [(f"{name.replace('_', ' ')}", str(count)) for name, count in doc["counts"].items()]
    width = max(len(label) for label, _ in lines)
    return Output(doc, "\n".join(f"{label + ':':<{width + 1}} {value}" for label, value in lines))


_ACCOUNT_SHOW_FIELDS = [
    ("id", "id"), ("name", "name"), ("status", "status"), ("api enabled", "api_enabled"),
    ("region", "region"), ("timezone", "timezone"), ("currency", "currency"),
    ("balance", "balance"), ("rate limit/min", "rate_limit_per_minute"), ("rate limits/min", "rate_limits"),
    ("caller id", "default_caller_id"), ("socket url", "default_socket_url"),
    ("webhook url", "default_webhook_url"), ("webhook secret", "webhook_secret"),
    ("previous secret until", "webhook_secret_previous_valid_until"),
    ("elevenlabs key", "elevenlabs_api_key"), ("elevenlabs agent id", "elevenlabs_agent_id"),
    ("vapi key", "vapi_api_key"), ("vapi assistant id", "vapi_assistant_id"),
    ("transfer numbers", "transfer_numbers"), ("transfer sip domains", "transfer_sip_domains"),
    ("on transfer failure", "on_transfer_failure"), ("created", "created_at"),
]


def accounts_set_status(args, status: str) -> Output:
    account = cli.find_account(args.account)
    changed = account.status != status
    if changed:
        account.status = status
        account.save(only=[Account.status])
    verb = {"active": "activated", "suspended": "suspended"}[status]
    if changed:
        text = f"account {cli.label(account)} {verb}"
    else:
        text = f"account {cli.label(account)} was already {status}"
    return Output({**_account_doc(account), "changed": changed}, text)


def accounts_set(args) -> Output:
    account = cli.find_account(args.account)
    changes: dict = {}
    if args.api_enabled is not None:
        changes["api_enabled"] = _boolean(args.api_enabled, "--api-enabled")
    if args.balance is not None:
        changes["balance"] = _money(args.balance)
    if args.rate_limit is not None:
        changes.update(_rate_limits(args.rate_limit, account.rate_limits))
    if args.region is not None:
        changes["region"] = _region(args.region)
    if args.timezone is not None:
        changes["timezone"] = _timezone(args.timezone)
    if args.currency is not None:
        changes["currency"] = _currency(args.currency)
    if args.on_transfer_failure is not None:
        changes["on_transfer_failure"] = clean_failure_action(args.on_transfer_failure)
    region = changes.get("region", account.region)
    optional = {
        "default_caller_id": (args.caller_id, lambda v: normalize_caller_id(v, region)),
        "default_socket_url": (args.socket_url, partial(check_media_target, what="socket URL")),
        "default_webhook_url": (args.webhook_url, check_webhook_url),
        "elevenlabs_api_key": (args.elevenlabs_key, partial(_credential, what="ElevenLabs key")),
        "vapi_api_key": (args.vapi_key, partial(_credential, what="Vapi key")),
        "transfer_numbers": (args.transfer_numbers, clean_number_rules),
        "transfer_sip_domains": (args.transfer_sip_domains, clean_sip_domains),
    }
    for field, (value, check) in optional.items():
        if value is not None:
            changes[field] = check(value) if value.strip() else None  # '' clears
    if not changes:
        raise CommandError("nothing to set; give at least one option (see --help)")
    for field, value in changes.items():
        setattr(account, field, value)
    account.save(only=[getattr(Account, field) for field in changes])
    return Output(
        {**_account_doc(account), "changed": sorted(changes)},
        f"updated account {cli.label(account)}: {', '.join(sorted(changes))}",
    )


def accounts_set_voice(args) -> Output:
    account = cli.find_account(args.account)
    changes: dict = {}
    from_stdin = [setting.key_option for setting in PROVIDER_SETTINGS.values()
                  if getattr(args, _dest(setting.key_option)) == "-"]
    if len(from_stdin) > 1:
        raise CommandError(f"only one key can be read from standard input ({' and '.join(from_stdin)} both say -)")
    for setting in PROVIDER_SETTINGS.values():
        ref = getattr(args, _dest(setting.ref_option))
        if ref is not None:
            changes[setting.ref_column] = (
                check_provider_ref(ref, setting.ref_option) if ref.strip() else None)
        path = getattr(args, _dest(setting.key_option))
        if path is not None:
            key = _read_secret(path, setting.key_option)
            changes[setting.key_column] = _credential(key, what=f"{setting.name} API key") if key else None
    if not changes:
        raise CommandError("nothing to set; give at least one option (see --help)")
    for field, value in changes.items():
        setattr(account, field, value)
    account.save(only=[getattr(Account, field) for field in changes])
    return Output({**_voice_doc(account), "changed": sorted(changes)},
                  f"updated account {cli.label(account)}: {', '.join(sorted(changes))}")


def accounts_show_voice(args) -> Output:
    account = cli.find_account(args.account)
    doc = _voice_doc(account)
    lines = []
    for setting in PROVIDER_SETTINGS.values():
        kind = setting.kind
        key = doc[kind]["api_key"]
        ref = doc[kind][setting.ref_words.replace(" ", "_")]
        lines.append(f"{setting.name}: {setting.ref_words} {ref or '-'},"
                     f" API key {('set (' + key + ')') if key else 'not set'}")
    settings = PROVIDER_SETTINGS.values()
    headers = ["NUMBER", *(f"{s.name} {s.ref_words}".upper() for s in settings)]
    rows = [[n["e164"], *(n[s.ref_column] or "-" for s in settings)] for n in doc["numbers"]]
    lines.append(cli.table(headers, rows, empty="no number has its own provider agents"))
    return Output(doc, "\n".join(lines))


def numbers_set_voice(args) -> Output:
    e164 = normalize(args.number, None)
    number = PhoneNumber.select(PhoneNumber, Account).join(Account).where(PhoneNumber.e164 == e164).first()
    if number is None:
        raise CommandError(f"no number {e164}")
    changes = {}
    for setting in PROVIDER_SETTINGS.values():
        ref = getattr(args, _dest(setting.ref_option))
        if ref is not None:
            changes[setting.ref_column] = check_provider_ref(ref, setting.ref_option) if ref.strip() else None
    if not changes:
        raise CommandError("nothing to set; give at least one option (see --help)")
    for field, value in changes.items():
        setattr(number, field, value)
    number.save(only=[getattr(PhoneNumber, field) for field in changes])
    return Output({**_number_doc(number, number.account), "changed": sorted(changes)},
                  f"updated {e164}: {', '.join(sorted(changes))}")


def webhook_secret_rotate(args) -> Output:
    account = cli.find_account(args.account)
    secret = account.rotate_webhook_secret()
    until = cli.iso(account.previous_webhook_secret_expires_at())
    doc = {"account_id": account.id, "webhook_secret": secret, "previous_valid_until": until}
    text = (
        f"new webhook secret for account {cli.label(account)}: {secret}\n"
        f"the previous secret stays valid until {until}"
    )
    return Output(doc, text)


# -- keys ---------------------------------------------------------------------


def keys_create(args) -> Output:
    account = cli.find_account(args.account)
    scopes = None
    if args.scopes is not None:
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        if not scopes:
            raise CommandError("--scopes is empty; omit it for the default set")
    owner = _agent(account, args.agent) if args.agent else None
    api_key, secret = keys.create_key(account, scopes, name=args.name, owner_agent=owner)
    doc = {**_key_doc(api_key), "secret_key": secret}
    text = (
        f"created key for account {cli.label(account)}\n"
        f"publishable key: {api_key.publishable_id}\n"
        f"secret key:      {secret}\n"
        f"scopes:          {', '.join(api_key.scopes)}\n"
        "The secret is shown only this once: store it now. Lost, it can only be rotated."
    )
    return Output(doc, text)


def keys_list(args) -> Output:
    account = cli.find_account(args.account)
    api_keys = list(account.api_keys.order_by(ApiKey.id))
    rows = [
        [k.publishable_id, k.masked_secret, k.name or "", k.owner_agent.key if k.owner_agent_id else "",
         _scopes_text(k.scopes), cli.iso(k.created_at), cli.iso(k.last_used_at) or "never",
         "revoked" if k.revoked else "active"]
        for k in api_keys
    ]
    text = cli.table(["PUBLISHABLE KEY", "SECRET", "NAME", "AGENT", "SCOPES", "CREATED", "LAST USED", "STATUS"],
                  rows, empty=f"account {cli.label(account)} has no keys")
    return Output({"account_id": account.id, "keys": [_key_doc(k) for k in api_keys]}, text)


def keys_rotate(args) -> Output:
    api_key = _api_key(args.publishable_key)
    try:
        secret = keys.rotate_key(api_key)
    except keys.KeyRevoked as exc:
        raise CommandError(str(exc)) from None
    text = (
        f"rotated key {api_key.publishable_id}; the old secret no longer works\n"
        f"secret key: {secret}\n"
        "The secret is shown only this once: store it now."
    )
    return Output({**_key_doc(api_key), "secret_key": secret}, text)


def keys_revoke(args) -> Output:
    api_key = _api_key(args.publishable_key)
    changed = keys.revoke_key(api_key)
    if changed:
        text = f"revoked key {api_key.publishable_id}"
    else:
        text = f"key {api_key.publishable_id} was already revoked"
    return Output({**_key_doc(api_key), "changed": changed}, text)


# -- agents -------------------------------------------------------------------


def agents_create(args) -> Output:
    account = cli.find_account(args.account)
    fields = clean_agent_fields(key=args.key, name=args.name, language=args.language,
                                agent_type=args.agent_type, driver=args.driver, driver_ref=args.ref)
    if account.agents.where(Agent.key == fields["key"]).exists():
        raise CommandError(f"account {cli.label(account)} already has an agent {fields['key']!r}")
    agent = Agent.create(account=account, **fields)
    text = (
        f"created agent {agent.key!r} ({agent.name}, {agent.agent_type}, {agent.driver})"
        f" in account {cli.label(account)}"
    )
    return Output(_agent_doc(agent), text)


def agents_list(args) -> Output:
    account = cli.find_account(args.account)
    agents = list(account.agents.order_by(Agent.key))
    rows = [[a.key, a.name, a.language, a.agent_type, a.driver, a.driver_ref, _yes_no(a.active)]
            for a in agents]
    text = cli.table(["KEY", "NAME", "LANGUAGE", "TYPE", "DRIVER", "REF", "ACTIVE"], rows,
                  empty=f"account {cli.label(account)} has no agents")
    return Output({"account_id": account.id, "agents": [_agent_doc(a) for a in agents]}, text)


# -- numbers ------------------------------------------------------------------


def numbers_add(args) -> Output:
    account = cli.find_account(args.account)
    e164 = normalize(args.number, account.region)
    existing = PhoneNumber.select(PhoneNumber, Account).join(Account).where(PhoneNumber.e164 == e164).first()
    if existing is not None:
        raise CommandError(f"number {e164} is already in account {cli.label(existing.account)}")
    agent = _agent(account, args.agent) if args.agent else None
    route = clean_route(socket_url=args.socket_url, agent=agent, webhook_url=args.webhook_url)
    number = PhoneNumber.create(account=account, e164=e164, **route)
    return Output(_number_doc(number, account),
                  f"added {e164} to account {cli.label(account)}: {number.route} → {number.target}")


def numbers_list(args) -> Output:
    query = (PhoneNumber.select(PhoneNumber, Account).join(Account)
             .order_by(Account.id, PhoneNumber.e164))
    if args.account:
        account = cli.find_account(args.account)
        query = query.where(PhoneNumber.account == account)
        empty = f"account {cli.label(account)} has no numbers"
    else:
        empty = "no numbers"
    numbers = list(query)
    rows = [[n.e164, n.account.name, n.route, n.target, _yes_no(n.active)] for n in numbers]
    text = cli.table(["NUMBER", "ACCOUNT", "ROUTE", "TARGET", "ACTIVE"], rows, empty=empty)
    return Output({"numbers": [_number_doc(n, n.account) for n in numbers]}, text)


def numbers_remove(args) -> Output:
    e164 = normalize(args.number, None)
    number = PhoneNumber.select(PhoneNumber, Account).join(Account).where(PhoneNumber.e164 == e164).first()
    if number is None:
        raise CommandError(f"no number {e164}")
    doc = _number_doc(number, number.account)
    number.delete_instance()
    return Output({**doc, "removed": True}, f"removed {e164} from account {cli.label(number.account)}")


# -- lookups and input checks -------------------------------------------------


def _agent(account: Account, key: str) -> Agent:
    agent = account.agents.where(Agent.key == key.strip()).first()
    if agent is None:
        raise CommandError(f"account {cli.label(account)} has no agent {key!r}")
    return agent


def _api_key(publishable_id: str) -> ApiKey:
    api_key = keys.find_key(publishable_id.strip())
    if api_key is None:
        raise CommandError(f"no key {publishable_id!r} (give its publishable key, pk_live_…)")
    return api_key


def _account_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise CommandError("the account name is empty")
    if len(name) > 255:
        raise CommandError("the account name is longer than 255 characters")
    if name.isdigit():
        raise CommandError(f"account name {name!r} is all digits, which reads as an account id")
    clash = Account.get_or_none(fn.LOWER(Account.name) == name.lower())
    if clash is not None:
        raise CommandError(f"an account named {clash.name!r} already exists (id {clash.id})")
    return name


def _region(region: str) -> str:
    try:
        return check_region(region.strip())
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _timezone(name: str) -> str:
    name = name.strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CommandError(
            f"unknown time zone {name!r}; expected an IANA name such as Asia/Kolkata"
        ) from None
    return name


def _currency(code: str) -> str:
    code = code.strip()
    if not re.fullmatch(r"[A-Za-z]{3}", code):
        raise CommandError(f"currency {code!r} is invalid; expected an ISO 4217 code such as USD or INR")
    return code.upper()


def _money(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise CommandError(f"balance {text!r} is not a number") from None
    if not amount.is_finite():
        raise CommandError(f"balance {text!r} is not a number")
    if amount < 0:
        raise CommandError(f"balance {text!r} is negative")
    if amount >= MAX_BALANCE:
        raise CommandError(f"balance {text!r} is too large (at most {MAX_BALANCE - Decimal('0.0001')})")
    if amount != amount.quantize(Decimal("0.0001")):
        raise CommandError(f"balance {text!r} has more than 4 decimal places")
    return amount.quantize(Decimal("0.0001"))


RATE_LIMIT_SURFACES = tuple(surface.value for surface in Surface)


def _rate_limit(text: str, whole: str) -> int | None:
    """A number of requests per minute, or None for ``default``."""
    value = text.strip()
    if value.lower() in ("", "default"):
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_RATE_LIMIT:
        raise CommandError(f"--rate-limit {whole!r} is invalid; expected a whole number from 1 to"
                           f" {MAX_RATE_LIMIT} (or 'default'), on every surface or per surface"
                           f" ({', '.join(f'{s}=N' for s in RATE_LIMIT_SURFACES)})")
    return int(value)


def _rate_limits(text: str, current: dict | None) -> dict:
    """The account fields ``--rate-limit`` sets: ``N`` the override on every surface,
    ``SURFACE=N,…`` those of the surfaces named (``default``: none)."""
    if "=" not in text:
        return {"rate_limit_per_minute": _rate_limit(text, text)}
    limits = dict(current or {})
    for part in text.split(","):
        surface, sep, value = part.partition("=")
        surface = surface.strip().lower()
        if not sep or surface not in RATE_LIMIT_SURFACES:
            raise CommandError(f"--rate-limit {text!r} is invalid; {surface or part!r} is not a surface"
                               f" (expected {', '.join(RATE_LIMIT_SURFACES)})")
        limit = _rate_limit(value, text)
        if limit is None:
            limits.pop(surface, None)
        else:
            limits[surface] = limit
    return {"rate_limits": limits or None}


def _boolean(text: str, option: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise CommandError(f"{option} {text!r} is invalid; expected true or false")


def _dest(option: str) -> str:
    """argparse's attribute name for ``option`` (``--vapi-api-key-file`` -> ``vapi_api_key_file``)."""
    return option.lstrip("-").replace("-", "_")


def _read_secret(path: str, option: str) -> str:
    """A secret from ``path`` (``-``: standard input), stripped of surrounding whitespace."""
    if path == "-":
        return sys.stdin.read().strip()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise CommandError(f"{option} {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{option} {path!r} is not UTF-8 text") from None


def _credential(value: str, what: str) -> str:
    value = value.strip()
    if any(ch.isspace() for ch in value) or len(value) > 512:
        raise CommandError(f"the {what} looks malformed (whitespace inside, or too long)")
    return value


# -- output -------------------------------------------------------------------


def _rate_text(account: Account) -> str:
    """The account's rate-limit overrides in a word: ``default`` (each surface's), ``N``,
    ``v1=90``, ``300,v1=90``."""
    parts = [] if account.rate_limit_per_minute is None else [str(account.rate_limit_per_minute)]
    parts += [f"{surface}={limit}" for surface, limit in sorted((account.rate_limits or {}).items())]
    return ",".join(parts) or "default"


def _account_doc(account: Account, with_secret: bool = False) -> dict:
    doc = {
        "id": account.id,
        "name": account.name,
        "status": account.status,
        "api_enabled": account.api_enabled,
        "region": account.region,
        "timezone": account.timezone,
        "currency": account.currency,
        "balance": str(account.balance),  # a string: JSON numbers would lose decimals
        "rate_limit_per_minute": account.rate_limit_per_minute,
        "rate_limits": account.rate_limits or {},
        "default_caller_id": account.default_caller_id,
        "default_socket_url": account.default_socket_url,
        "default_webhook_url": account.default_webhook_url,
        "elevenlabs_api_key": _masked(account.elevenlabs_api_key),
        "elevenlabs_agent_id": account.elevenlabs_agent_id,
        "vapi_api_key": _masked(account.vapi_api_key),
        "vapi_assistant_id": account.vapi_assistant_id,
        "transfer_numbers": list(TransferPolicy.of(account).numbers),
        "transfer_sip_domains": list(TransferPolicy.of(account).sip_domains),
        "on_transfer_failure": account.on_transfer_failure,
        "created_at": cli.iso(account.created_at),
    }
    if with_secret:
        doc["webhook_secret"] = account.webhook_secret
        doc["webhook_secret_previous_valid_until"] = cli.iso(account.previous_webhook_secret_expires_at())
    return doc


def _key_doc(api_key: ApiKey) -> dict:
    return {
        "id": api_key.id,
        "account_id": api_key.account_id,
        "publishable_key": api_key.publishable_id,
        "secret_key_prefix": api_key.secret_prefix,
        "name": api_key.name,
        "scopes": api_key.scopes,
        "owner_agent": api_key.owner_agent.key if api_key.owner_agent_id else None,
        "created_at": cli.iso(api_key.created_at),
        "rotated_at": cli.iso(api_key.rotated_at),
        "last_used_at": cli.iso(api_key.last_used_at),
        "revoked_at": cli.iso(api_key.revoked_at),
    }


def _agent_doc(agent: Agent) -> dict:
    return {
        "id": agent.id,
        "account_id": agent.account_id,
        "key": agent.key,
        "name": agent.name,
        "language": agent.language,
        "agent_type": agent.agent_type,
        "driver": agent.driver,
        "driver_ref": agent.driver_ref,
        "active": agent.active,
        "created_at": cli.iso(agent.created_at),
    }


def _number_doc(number: PhoneNumber, account: Account) -> dict:
    return {
        "id": number.id,
        "e164": number.e164,
        "account_id": account.id,
        "account": account.name,
        "route": number.route,
        "socket_url": number.socket_url,
        "agent": number.agent.key if number.agent_id else None,
        "webhook_url": number.webhook_url,
        "elevenlabs_agent_id": number.elevenlabs_agent_id,
        "vapi_assistant_id": number.vapi_assistant_id,
        "active": number.active,
        "created_at": cli.iso(number.created_at),
    }


def _voice_doc(account: Account) -> dict:
    """The account's native AI provider settings, keys masked, and its numbers' own ids."""
    doc: dict = {"account_id": account.id}
    for kind, setting in PROVIDER_SETTINGS.items():
        doc[kind] = {setting.ref_words.replace(" ", "_"): getattr(account, setting.ref_column),
                     "api_key": _masked(getattr(account, setting.key_column))}
    columns = [getattr(PhoneNumber, s.ref_column) for s in PROVIDER_SETTINGS.values()]
    has_own = columns[0].is_null(False)
    for column in columns[1:]:
        has_own |= column.is_null(False)
    numbers = account.phone_numbers.where(has_own).order_by(PhoneNumber.e164)
    doc["numbers"] = [{"e164": n.e164, **{s.ref_column: getattr(n, s.ref_column) for s in PROVIDER_SETTINGS.values()}}
                      for n in numbers]
    return doc


def _masked(secret: str | None) -> str | None:
    """A credential for display: only its last 4 characters."""
    if secret is None:
        return None
    return "…" + secret[-4:] if len(secret) > 8 else "…"


def _scopes_text(scopes: list[str]) -> str:
    return "default" if set(scopes) == set(keys.DEFAULT_SCOPES) else ",".join(scopes)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _text_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, list):
        return ", ".join(value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in sorted(value.items())) or "-"
    return str(value)
