"""``voicegw secrets …``: the keys the stored secrets are encrypted with (``gateway.secret_keys``).

::

    voicegw secrets generate-key     (a new key for GATEWAY_SECRETS_KEY)
    voicegw secrets rotate           (re-encrypt every stored secret with the first key)

Rotation: put a new key first in ``GATEWAY_SECRETS_KEY``, keeping the old one after it,
in every process's configuration, and restart them; run ``voicegw secrets rotate``; then
remove the old key (README, "Stored secrets"). Both commands take ``--json``.
``gateway.cli`` mounts these with :func:`add_subparsers`.
"""
from __future__ import annotations

import json

from gateway import models
from gateway import cli_common as cli
from gateway.cli_common import Output
from gateway.models import stored_secrets
from gateway.secret_keys import KEY_VAR, SecretKeys, generate_key, keys_for


def add_subparsers(subparsers) -> None:
    """Add the ``secrets`` command group."""
    group = cli.group(subparsers, "secrets", "the keys that encrypt stored webhook secrets and provider API keys")
    p = group.add_parser("generate-key", help=f"print a new key for {KEY_VAR}",
                         description=f"print a new key for {KEY_VAR}")
    p.add_argument("--json", action="store_true", help="print a JSON document")
    p.set_defaults(func=generate)
    cli.command(group, "rotate", rotate,
             f"re-encrypt every stored secret with the first key of {KEY_VAR}; the others can then be removed")


def generate(args) -> int:
    key = generate_key()
    if args.json:
        print(json.dumps({"key": key, "key_id": SecretKeys([key], "the new key").first_id}, indent=2))
    else:
        print(key)
    return 0


def rotate(args) -> Output:
    result = stored_secrets.rotate(models.database.obj)
    keys = keys_for(models.database)
    others = [key_id for key_id in keys.ids if key_id != result.key_id]
    text = (f"re-encrypted {result.reencrypted} stored secret(s) with key {result.key_id}"
            f" ({result.unchanged} already were): every stored secret is on key {result.key_id}")
    if others:
        text += f"; the other key(s) of {keys.source} ({', '.join(others)}) can be removed"
    doc = {"key_id": result.key_id, "reencrypted": result.reencrypted, "unchanged": result.unchanged,
           "removable_key_ids": others}
    return Output(doc, text)
