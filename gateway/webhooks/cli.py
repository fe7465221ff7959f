"""``voicegw webhooks …``: inspect, replay and dispatch webhook deliveries; subscriptions.

::

    voicegw webhooks list [--account A] [--status pending|delivering|delivered|dead|stopped | --dead]
                          [--call UUID] [--since WHEN] [--limit 50]
    voicegw webhooks show ID            (a delivery id or its evt_… event id; with its attempts)
    voicegw webhooks replay ID          (queue a delivered/dead/stopped one again, same evt_ id)
    voicegw webhooks replay --dead [--since WHEN] [--account A]   (every dead one, in bulk)
    voicegw webhooks purge --older-than-days 30   (delete closed deliveries and their attempts)
    voicegw webhooks subscribe ACCOUNT SURFACE [--url URL] [--events a,b|all] [--disable|--enable]
                               [--header-profile gateway|contract|standard-webhooks]
    voicegw webhooks subscriptions [ACCOUNT]
    voicegw webhooks signing-secret ACCOUNT SURFACE   (the secret in the form its profile's verifiers take)
    voicegw webhooks dispatch [--concurrency 10] [--max-age-hours 24] [--max-attempts N]
                              [--backoff-base 10] [--backoff-cap 3600] [--lease 60] [--timeout 10]

``WHEN`` is an ISO 8601 time (``2026-02-09T10:00Z``; no offset means UTC) or an age
(``90m``, ``6h``, ``3d``: that long ago), compared with when the event was created.
``dead`` is the dead-letter state: retries ran out (after the 24-hour window) or the
URL was refused.

Every command but ``dispatch`` takes ``--json``. ``dispatch`` runs a dispatcher in the
foreground until SIGTERM or SIGINT (``python -m gateway.webhooks`` does the same).
``gateway.cli`` mounts these with :func:`add_subparsers`.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from datetime import datetime, timedelta, timezone

from gateway import cli_common as cli
from gateway.cli_common import CommandError, Output
from gateway.models import DELIVERY_STATUSES, WebhookAttempt, WebhookDelivery, WebhookSubscription
from gateway.webhooks.events import EVENT_TYPES, SUBSCRIBABLE, SURFACES
from gateway.webhooks.profiles import PROFILES, STANDARD_WEBHOOKS, standard_webhooks_secret

logger = logging.getLogger(__name__)

MAX_WINDOW_HOURS = 24 * 366  # a longer retry window is a typo


def add_subparsers(subparsers) -> None:
    """Add the ``webhooks`` command group."""
    group = cli.group(subparsers, "webhooks", "webhook deliveries, subscriptions and the dispatcher")
    p = cli.command(group, "list", webhooks_list, "list webhook deliveries, newest first")
    p.add_argument("--account", help="account id or name")
    status = p.add_mutually_exclusive_group()
    status.add_argument("--status", choices=DELIVERY_STATUSES)
    status.add_argument("--dead", dest="status", action="store_const", const="dead",
                        help="the dead letters: retries ran out or the URL was refused (--status dead)")
    p.add_argument("--call", help="call uuid")
    p.add_argument("--since", metavar="WHEN", help="created at or after WHEN (ISO 8601 time, or an age: 6h, 3d)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = cli.command(group, "show", webhooks_show, "show a delivery, its body and its attempts")
    p.add_argument("id", help="delivery id or evt_… event id")
    p = cli.command(group, "replay", webhooks_replay,
                 "queue a delivered, dead or stopped delivery again (same event id), or every dead one")
    p.add_argument("id", nargs="?", help="delivery id or evt_… event id")
    p.add_argument("--dead", action="store_true", help="every dead delivery (with --since, --account)")
    p.add_argument("--since", metavar="WHEN",
                   help="with --dead: created at or after WHEN (ISO 8601 time, or an age: 6h, 3d)")
    p.add_argument("--account", help="with --dead: of this account (id or name)")
    p = cli.command(group, "purge", webhooks_purge,
                 "delete delivered, dead and stopped deliveries older than some days")
    p.add_argument("--older-than-days", type=float, required=True, metavar="DAYS")
    p = cli.command(group, "subscribe", webhooks_subscribe,
                 "set which events an account receives for one surface's calls, and where")
    p.add_argument("account", help="account id or name")
    p.add_argument("surface", choices=SUBSCRIBABLE,
                   help="api (/api), v1 (/v1), public (/api/public/v1) or voice (campaign progress)")
    p.add_argument("--url", help="receiver URL ('' clears it: the surface's default applies)")
    p.add_argument("--events", help="comma-separated event types, or 'all'")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--disable", dest="active", action="store_false", default=None,
                       help="send none of this surface's events")
    state.add_argument("--enable", dest="active", action="store_true", help="send them again")
    p.add_argument("--header-profile", choices=PROFILES,
                   help="the headers that carry the event and its signature: gateway (ours, the default),"
                        " contract (the surface's contract's own), standard-webhooks (docs/webhooks.md)")
    p = cli.command(group, "signing-secret", webhooks_signing_secret,
                    "print the account's webhook secret as the subscription's verifiers take it")
    p.add_argument("account", help="account id or name")
    p.add_argument("surface", choices=SURFACES, help="api, v1 or public")
    p = cli.command(group, "subscriptions", webhooks_subscriptions, "list webhook subscriptions")
    p.add_argument("account", nargs="?", help="account id or name")
    p = group.add_parser("dispatch", help="run a webhook dispatcher until SIGTERM",
                         description="run a webhook dispatcher in the foreground until SIGTERM")
    add_dispatch_arguments(p)
    p.set_defaults(func=cmd_dispatch)


# -- listing and replay ----------------------------------------------------------------------


def _delivery(ref: str) -> WebhookDelivery:
    from gateway.webhooks.outbox import find_delivery

    delivery = find_delivery(ref)
    if delivery is None:
        raise CommandError(f"no webhook delivery {ref!r} (give its id or its evt_… event id)")
    return delivery


def _delivery_doc(d: WebhookDelivery, full: bool = False) -> dict:
    doc = {
        "id": d.id, "event_id": d.event_id, "account_id": d.account_id, "call_uuid": d.call_uuid,
        "surface": d.surface, "event_type": d.event_type, "url": d.url, "header_profile": d.header_profile,
        "status": d.status,
        "attempts": d.attempts, "next_attempt_at": cli.iso(d.next_attempt_at), "last_code": d.last_code,
        "last_error": d.last_error, "created_at": cli.iso(d.created_at), "queued_at": cli.iso(d.queued_at),
        "delivered_at": cli.iso(d.delivered_at),
    }
    if full:
        doc["headers"] = d.headers
        doc["body"] = json.loads(d.body)
    return doc


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _moment(text: str) -> datetime:
    """``WHEN``: an ISO 8601 time (UTC when it has no offset) or an age such as ``6h``."""
    value = text.strip().lower()
    age = _AGE.fullmatch(value)
    try:
        if age:
            return datetime.now(timezone.utc) - timedelta(**{_AGE_UNITS[age.group(2)]: float(age.group(1))})
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise CommandError(f"--since must be an ISO 8601 time (2026-02-09T10:00Z) or an age (90m, 6h, 3d),"
                           f" not {text!r}")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def webhooks_list(args) -> Output:
    D = WebhookDelivery
    query = D.select()
    if args.account:
        query = query.where(D.account == cli.find_account(args.account).id)
    if args.status:
        query = query.where(D.status == args.status)
    if args.call:
        query = query.where(D.call_uuid == args.call.strip())
    if args.since:
        query = query.where(D.created_at >= _moment(args.since))
    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    rows = list(query.order_by(D.id.desc()).limit(args.limit))
    docs = [_delivery_doc(d) for d in rows]
    table = cli.table(
        ["ID", "EVENT ID", "TYPE", "CALL", "STATUS", "ATTEMPTS", "LAST", "URL"],
        [[str(d.id), d.event_id, d.event_type, d.call_uuid or "-", d.status, str(d.attempts),
          str(d.last_code or d.last_error or "-")[:40], d.url] for d in rows],
        "no deliveries",
    )
    return Output({"deliveries": docs}, table)


def webhooks_show(args) -> Output:
    d = _delivery(args.id)
    attempts = list(WebhookAttempt.select().where(WebhookAttempt.delivery == d.id).order_by(WebhookAttempt.id))
    doc = _delivery_doc(d, full=True)
    doc["attempt_log"] = [{"number": a.number, "at": cli.iso(a.at), "code": a.code, "latency_ms": a.latency_ms,
                           "error": a.error} for a in attempts]
    lines = [f"{key}: {'-' if value is None else value}" for key, value in _delivery_doc(d).items()]
    lines.append("headers: " + json.dumps(d.headers, ensure_ascii=False))
    lines.append("body: " + d.body)
    lines.append("attempts:")
    lines.append(cli.table(["#", "AT", "CODE", "LATENCY MS", "ERROR"],
                        [[str(a.number), cli.iso(a.at), str(a.code or "-"), str(a.latency_ms), a.error or "-"]
                         for a in attempts], "none yet"))
    return Output(doc, "\n".join(lines))


def webhooks_replay(args) -> Output:
    from gateway.webhooks.outbox import replay, replay_dead

    if args.dead:
        if args.id:
            raise CommandError("give a delivery id or --dead, not both")
        since = _moment(args.since) if args.since else None
        account = cli.find_account(args.account) if args.account else None
        count = replay_dead(since, account.id if account else None)
        scope = "".join([f" of account {cli.label(account)}" if account else "",
                         f" created since {cli.iso(since)}" if since else ""])
        return Output({"replayed": count, "since": cli.iso(since), "account_id": account.id if account else None},
                      f"queued {count} dead deliveries{scope} again")
    if args.since or args.account:
        raise CommandError("--since and --account go with --dead")
    if not args.id:
        raise CommandError("give a delivery id (or its evt_… event id), or --dead")
    d = _delivery(args.id)
    try:
        d = replay(d.id)
    except (LookupError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return Output(_delivery_doc(d), f"queued delivery {d.id} ({d.event_id}) again for {d.url}")


def webhooks_purge(args) -> Output:
    from gateway.webhooks.outbox import purge

    if args.older_than_days < 0:
        raise CommandError("--older-than-days must not be negative")
    count = purge(timedelta(days=args.older_than_days))
    return Output({"deleted": count}, f"deleted {count} closed deliveries older than {args.older_than_days:g} days")


# -- subscriptions ---------------------------------------------------------------------------


def _subscription_doc(s: WebhookSubscription) -> dict:
    return {"account_id": s.account_id, "surface": s.surface, "url": s.url,
            "events": s.events, "active": s.active, "header_profile": s.header_profile,
            "updated_at": cli.iso(s.updated_at)}


def webhooks_subscribe(args) -> Output:
    from gateway.webhooks.subscriptions import set_subscription

    account = cli.find_account(args.account)
    changes = {}
    if args.url is not None:
        changes["url"] = args.url.strip() or None
    if args.events is not None:
        text = args.events.strip()
        changes["events"] = None if text.lower() == "all" else [e for e in text.split(",") if e.strip()]
    if args.active is not None:
        changes["active"] = args.active
    if args.header_profile is not None:
        changes["header_profile"] = args.header_profile
    sub = set_subscription(account, args.surface, **changes)
    events = ", ".join(sub.events) if sub.events is not None else f"all ({', '.join(EVENT_TYPES[sub.surface])})"
    text = (f"account {cli.label(account)}, surface {sub.surface}: {'active' if sub.active else 'disabled'};"
            f" url {sub.url or '(the surface default)'}; events {events}; headers {sub.header_profile}")
    if sub.header_profile == STANDARD_WEBHOOKS:
        text += f"\n(the secret as Standard Webhooks libraries take it: voicegw webhooks signing-secret" \
                f" {account.id} {sub.surface})"
    return Output(_subscription_doc(sub), text)


def webhooks_signing_secret(args) -> Output:
    """The account's webhook secret (and the previous one, while it is still valid), as
    the verifiers of the subscription's header profile take it: as is, or, for
    Standard Webhooks, ``whsec_<base64 of the key>``."""
    from gateway.models import utcnow
    from gateway.webhooks.subscriptions import header_profile_of

    account = cli.find_account(args.account)
    profile = header_profile_of(account.id, args.surface)
    shown = standard_webhooks_secret if profile == STANDARD_WEBHOOKS else str
    secrets = [shown(secret) for secret in account.webhook_secrets(utcnow())]
    doc = {"account_id": account.id, "surface": args.surface, "header_profile": profile,
           "webhook_secret": secrets[0], "previous_webhook_secret": secrets[1] if len(secrets) > 1 else None,
           "previous_valid_until": cli.iso(account.previous_webhook_secret_expires_at()) if len(secrets) > 1 else None}
    text = secrets[0]
    if len(secrets) > 1:
        text += f"\nprevious, valid until {doc['previous_valid_until']}: {secrets[1]}"
    return Output(doc, text)


def webhooks_subscriptions(args) -> Output:
    query = WebhookSubscription.select().order_by(WebhookSubscription.account, WebhookSubscription.surface)
    if args.account:
        query = query.where(WebhookSubscription.account == cli.find_account(args.account).id)
    rows = list(query)
    table = cli.table(["ACCOUNT", "SURFACE", "ACTIVE", "EVENTS", "HEADERS", "URL"],
                   [[str(s.account_id), s.surface, "yes" if s.active else "no",
                     ",".join(s.events) if s.events is not None else "all", s.header_profile,
                     s.url or "(default)"] for s in rows],
                   "no subscriptions")
    return Output({"subscriptions": [_subscription_doc(s) for s in rows]}, table)


# -- the dispatcher ------------------------------------------------------------------------------


def add_dispatch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=10, help="deliveries in flight (default 10)")
    parser.add_argument("--max-age-hours", type=float, default=24.0,
                        help="the retry window: retried for this many hours since queued, then dead (default 24)")
    parser.add_argument("--max-attempts", type=int, default=None,
                        help="also dead after this many attempts (default: no bound; the window decides)")
    parser.add_argument("--backoff-base", type=float, default=10.0, help="first retry delay bound, s (default 10)")
    parser.add_argument("--backoff-cap", type=float, default=3600.0, help="retry delay bound, s (default 3600)")
    parser.add_argument("--lease", type=float, default=60.0,
                        help="s before a delivery claimed by a dead dispatcher is claimed again (default 60)")
    parser.add_argument("--timeout", type=float, default=10.0, help="request timeout, s (default 10)")
    parser.add_argument("--poll", type=float, default=1.0, help="poll interval when idle, s (default 1)")


def cmd_dispatch(args) -> int:
    import gevent
    import gevent.event

    from gateway import net_policy, secret_keys
    from gateway.config import Settings
    from gateway.models import connect, migrate, stored_secrets
    from gateway.webhooks.dispatcher import Dispatcher

    if not 0 < args.max_age_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"--max-age-hours must be more than 0 and at most {MAX_WINDOW_HOURS} (a year)")
    settings = Settings.from_env(config_file=getattr(args, "config", None))
    net_policy.configure(settings.outbound_allowlist)
    secret_keys.configure(settings.secrets_keys)
    db = connect(settings.database_url)
    migrate(db)
    stored_secrets.check(db)  # it signs with the accounts' secrets
    dispatcher = Dispatcher(
        db, max_attempts=args.max_attempts, max_age=timedelta(hours=args.max_age_hours),
        concurrency=args.concurrency, request_timeout=args.timeout, backoff_base=args.backoff_base,
        backoff_cap=args.backoff_cap, lease=args.lease, poll_interval=args.poll,
    )
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    dispatcher.start()
    print("webhook dispatcher running", flush=True)
    stop.wait()
    dispatcher.stop()
    db.close_all() if hasattr(db, "close_all") else db.close()
    return 0


def dispatch_main(argv=None) -> int:
    """``python -m gateway.webhooks``: the ``dispatch`` command on its own."""
    parser = argparse.ArgumentParser(prog="python -m gateway.webhooks", description="run a webhook dispatcher")
    parser.add_argument("--config", help="config file (INI or TOML); also GATEWAY_CONFIG")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every attempt")
    add_dispatch_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return cmd_dispatch(args)
    except ValueError as exc:
        print(f"voicegw: {exc}", file=sys.stderr)
        return 2
