"""What every admin command group shares: how a command is declared, run and printed.

A command is a small handler ``(args) -> Output`` declared with :func:`command` in a
:func:`group`; :func:`run` opens the database (:func:`open_database`: migrated, its stored
secrets readable), runs the handler inside one transaction, prints its ``Output`` (one
JSON document with ``--json``, else text), and turns errors into exit codes: bad input
(``ValueError``, ``CommandError`` among them) exits 2 with one line on stderr, a database
failure 1. ``gateway.admin_cli``, ``calls_cli``, ``public_cli``, ``secrets_cli`` and
``gateway.webhooks.cli`` are such groups.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from peewee import DatabaseError, IntegrityError
from playhouse.pool import PooledDatabase

from gateway import models, net_policy, secret_keys
from gateway.config import Settings
from gateway.models import Account, connect, migrate, stored_secrets


class CommandError(ValueError):
    """Bad input to a command: printed as one line, exit status 2."""


@dataclass
class Output:
    """What a command prints: ``data`` with ``--json``, else ``text``."""

    data: dict
    text: str


def group(subparsers, name: str, help: str):
    """A command group (``voicegw <name> COMMAND``)."""
    parser = subparsers.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def command(group, name: str, handler: Callable[[argparse.Namespace], Output], help: str):
    """A command of ``group`` that :func:`run` runs; returns its parser, for its arguments."""
    parser = group.add_parser(name, help=help, description=help)
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.set_defaults(func=partial(run, handler))
    return parser


def run(handler: Callable[[argparse.Namespace], Output], args: argparse.Namespace) -> int:
    """Run one command in a transaction; print its output; return the exit status."""
    try:
        settings = Settings.from_env(config_file=getattr(args, "config", None))
        # URLs given to a command are checked against the operator's allowlist.
        with secret_keys.using(settings.secrets_keys), open_database(settings.database_url) as db, \
                net_policy.policy.allowing(*settings.outbound_allowlist), db.atomic():
            output = handler(args)
    except ValueError as exc:  # CommandError, InvalidNumber, UnknownScope, bad settings…
        return _fail(str(exc), 2)
    except IntegrityError:
        # Checked up front; reaching here means a concurrent change won the race.
        return _fail("that conflicts with existing data (changed meanwhile?); try again", 2)
    except DatabaseError as exc:
        return _fail(f"database error: {' '.join(str(exc).split())}", 1)
    if args.json:
        print(json.dumps(output.data, indent=2, ensure_ascii=False))
    else:
        print(output.text)
    return 0


def _fail(message: str, status: int) -> int:
    print(f"voicegw: error: {message}", file=sys.stderr)
    return status


@contextmanager
def open_database(url: str):
    """Bind the models to ``url``'s database, migrated and its stored secrets readable
    with this process's keys (so that no command writes one with another key), for one
    command.

    Afterwards the models are bound back to what they were, so that commands
    can run in-process (tests, a shell) without stealing the caller's binding.
    """
    previous = models.database.obj
    db = connect(url)
    try:
        migrate(db)
        stored_secrets.check(db)
        yield db
    finally:
        if isinstance(db, PooledDatabase):
            db.close_all()
        else:
            db.close()
        models.database.initialize(previous)


def find_account(ref: str) -> Account:
    """The account an id or a name designates; an id wins over a name made of digits."""
    ref = ref.strip()
    account = None
    if ref.isascii() and ref.isdigit():
        account = Account.get_or_none(Account.id == int(ref))
    if account is None:
        account = Account.get_or_none(Account.name == ref)
    if account is None:
        raise CommandError(f"no account {ref!r} (give an id or a name; see 'voicegw accounts list')")
    return account


def label(account: Account) -> str:
    """``3 (acme)``: how output names an account."""
    return f"{account.id} ({account.name})"


def iso(value: datetime | None) -> str | None:
    """A timestamp as output shows it: ``2026-05-24T10:30:00Z``."""
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    """Rows under their headers, in aligned columns; ``(empty)`` without rows."""
    if not rows:
        return f"({empty})"
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in [headers, *rows]
    )
