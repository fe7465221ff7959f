"""Admin commands of the public calling API: the audio library, saved campaigns, call
rates, the wallet and the press-1 agent destination.

::

    voicegw audio upload ACCOUNT FILE [--name NAME]     convert to 8 kHz mono WAV and store
    voicegw audio list ACCOUNT | delete ACCOUNT CLIP
    voicegw campaigns create ACCOUNT NAME --type audio_blast|press1|otp|voice_agent
                             [--audio CLIP] [--dtmf-map '{"1": "connect_agent"}'] [--caller-id N]
                             [--status active|paused]
    voicegw campaigns list ACCOUNT
    voicegw campaigns set CAMPAIGN [--name …] [--status active|paused|archived] [--audio CLIP|'']
                             [--dtmf-map JSON|''] [--caller-id N|'']
    voicegw rates set ACCOUNT PREFIX PER_MINUTE [--pulse 60]    (PREFIX '' or '*': every number)
    voicegw rates list ACCOUNT | remove ACCOUNT PREFIX
    voicegw wallet show ACCOUNT [--limit 20]                    balance and latest entries
    voicegw wallet credit ACCOUNT AMOUNT [--note …]            a top-up
    voicegw wallet adjust ACCOUNT AMOUNT [--note …]            a signed correction
    voicegw agent-destination set ACCOUNT DESTINATION|''        where press-1 "connect_agent" goes

ACCOUNT is an account id or name. Files go under the media directory
(``GATEWAY_MEDIA_DIR``; see ``gateway.recordings``), which FreeSWITCH must read at the
same path. Every command takes ``--json``, runs in one transaction, and exits 2 with one
line on stderr for bad input, as the other admin commands do (``gateway.admin_cli``).
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path

from gateway import cli_common as cli
from gateway.cli_common import CommandError, Output
from gateway.billing import ledger
from gateway.billing.rates import check_prefix
from gateway.calls.scripts import check_dtmf_map
from gateway.campaigns import audio, saved
from gateway.calls.transfer_policy import TransferPolicy, transfer_destination
from gateway.models import CAMPAIGN_STATUSES, CAMPAIGN_TYPES, AudioClip, CallRate, SavedCampaign
from gateway.numbering import normalize_caller_id

MAX_AMOUNT = Decimal(10) ** 9
MAX_PULSE = 3600


def add_subparsers(subparsers) -> None:
    """Add the ``audio``, ``campaigns``, ``rates``, ``wallet`` and ``agent-destination`` commands."""
    group = cli.group(subparsers, "audio", "manage an account's audio library (public calling API)")
    p = cli.command(group, "upload", audio_upload,
                    "convert an audio file (WAV, MP3, Ogg, FLAC) to 8 kHz mono and add it to the library")
    p.add_argument("account", help="account id or name")
    p.add_argument("file", help="a WAV file (PCM, float, mu-law or A-law; any rate and channels)")
    p.add_argument("--name", help="the clip's name (default: the file name)")
    p = cli.command(group, "list", audio_list, "list an account's clips")
    p.add_argument("account", help="account id or name")
    p = cli.command(group, "delete", audio_delete, "delete a clip")
    p.add_argument("account", help="account id or name")
    p.add_argument("clip", help="clip id")

    group = cli.group(subparsers, "campaigns", "manage saved campaigns (public calling API)")
    p = cli.command(group, "create", campaigns_create, "create a saved campaign")
    p.add_argument("account", help="account id or name")
    p.add_argument("name")
    p.add_argument("--type", dest="kind", required=True, choices=CAMPAIGN_TYPES)
    p.add_argument("--audio", metavar="CLIP", help="clip id of the account's library")
    p.add_argument("--dtmf-map", help='press1: JSON such as {"1": "connect_agent", "9": "hangup"}')
    p.add_argument("--caller-id", help="a number of the account to call from (default: the account's)")
    p.add_argument("--status", default="active", choices=("active", "paused"))
    p = cli.command(group, "list", campaigns_list, "list an account's saved campaigns")
    p.add_argument("account", help="account id or name")
    p = cli.command(group, "set", campaigns_set, "change a campaign ('' clears an optional setting)")
    p.add_argument("campaign", help="campaign id")
    p.add_argument("--name")
    p.add_argument("--status", choices=CAMPAIGN_STATUSES)
    p.add_argument("--audio", metavar="CLIP")
    p.add_argument("--dtmf-map")
    p.add_argument("--caller-id")

    group = cli.group(subparsers, "rates", "manage an account's per-minute call rates")
    p = cli.command(group, "set", rates_set, "set the rate of numbers starting with PREFIX")
    p.add_argument("account", help="account id or name")
    p.add_argument("prefix", help="E.164 prefix such as +91 or +9198; '' or '*' for every number")
    p.add_argument("per_minute", help="price of one minute of talk, in the account's currency")
    p.add_argument("--pulse", type=int, default=60, help="billing pulse in seconds (default 60: per started minute)")
    p = cli.command(group, "list", rates_list, "list an account's rates")
    p.add_argument("account", help="account id or name")
    p = cli.command(group, "remove", rates_remove, "remove a rate")
    p.add_argument("account", help="account id or name")
    p.add_argument("prefix")

    group = cli.group(subparsers, "wallet", "an account's wallet: balance and ledger")
    p = cli.command(group, "show", wallet_show, "the balance and the latest ledger entries")
    p.add_argument("account", help="account id or name")
    p.add_argument("--limit", type=int, default=20)
    p = cli.command(group, "credit", partial(wallet_change, kind="credit"), "add a top-up to the balance")
    p.add_argument("account", help="account id or name")
    p.add_argument("amount")
    p.add_argument("--note", help="shown in the ledger")
    p = cli.command(group, "adjust", partial(wallet_change, kind="adjustment"),
                 "correct the balance by a signed amount")
    p.add_argument("account", help="account id or name")
    p.add_argument("amount", help="signed, e.g. -12.50")
    p.add_argument("--note", help="shown in the ledger")

    group = cli.group(subparsers, "agent-destination", "where press-1 calls' connect_agent transfers to")
    p = cli.command(group, "set", agent_destination_set, "set (or clear with '') an account's agent destination")
    p.add_argument("account", help="account id or name")
    p.add_argument("destination", help="a number, an extension or a sip: URI")


# -- audio ----------------------------------------------------------------------------


def audio_upload(args) -> Output:
    account = cli.find_account(args.account)
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    clip = audio.store_clip(account, data, name=args.name, filename=path.name)
    return Output(_clip_doc(clip), f"added clip {clip.id} ({clip.name}) to account {cli.label(account)}:"
                                   f" {clip.duration_ms / 1000:.2f} s, 8 kHz mono WAV at {clip.path}")


def audio_list(args) -> Output:
    account = cli.find_account(args.account)
    clips = list(AudioClip.select().where(AudioClip.account == account.id).order_by(AudioClip.id))
    rows = [[str(c.id), c.name, f"{c.duration_ms / 1000:.2f}s", c.original_name or "-"] for c in clips]
    return Output({"clips": [_clip_doc(c) for c in clips]},
                  cli.table(["ID", "NAME", "LENGTH", "UPLOADED AS"], rows, empty="no clips"))


def audio_delete(args) -> Output:
    account = cli.find_account(args.account)
    clip = _clip(account, args.clip)
    audio.delete_clip(clip)
    return Output({"deleted": clip.id}, f"deleted clip {clip.id} ({clip.name})")


# -- campaigns --------------------------------------------------------------------------


def campaigns_create(args) -> Output:
    account = cli.find_account(args.account)
    clip = _clip(account, args.audio) if args.audio else None
    dtmf_map = _dtmf_map(args.dtmf_map) if args.dtmf_map else None
    caller_id = normalize_caller_id(args.caller_id, account.region) if args.caller_id else None
    campaign = saved.create(account, args.name, args.kind, audio=clip, dtmf_map=dtmf_map, caller_id=caller_id,
                            status=args.status)
    return Output(_campaign_doc(campaign), f"created campaign {campaign.id} ({campaign.name}, {campaign.type})"
                                           f" for account {cli.label(account)}")


def campaigns_list(args) -> Output:
    account = cli.find_account(args.account)
    campaigns = list(SavedCampaign.select().where(SavedCampaign.account == account.id).order_by(SavedCampaign.id))
    rows = [[str(c.id), c.name, c.type, c.status, str(c.audio_id or "-")] for c in campaigns]
    return Output({"campaigns": [_campaign_doc(c) for c in campaigns]},
                  cli.table(["ID", "NAME", "TYPE", "STATUS", "AUDIO"], rows, empty="no campaigns"))


def campaigns_set(args) -> Output:
    campaign = SavedCampaign.get_or_none(SavedCampaign.id == _id(args.campaign, "campaign"))
    if campaign is None:
        raise CommandError(f"no campaign {args.campaign}")
    account = campaign.account
    changes = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.status is not None:
        changes["status"] = args.status
    if args.audio is not None:
        changes["audio"] = _clip(account, args.audio) if args.audio.strip() else None
    if args.dtmf_map is not None:
        changes["dtmf_map"] = _dtmf_map(args.dtmf_map) if args.dtmf_map.strip() else None
    if args.caller_id is not None:
        changes["caller_id"] = normalize_caller_id(args.caller_id, account.region) if args.caller_id.strip() else None
    if not changes:
        raise CommandError("nothing to set; give at least one option (see --help)")
    saved.update(campaign, **changes)
    return Output({**_campaign_doc(campaign), "changed": sorted(changes)},
                  f"updated campaign {campaign.id}: {', '.join(sorted(changes))}")


# -- rates and wallet -------------------------------------------------------------------


def rates_set(args) -> Output:
    account = cli.find_account(args.account)
    prefix = check_prefix(args.prefix)
    per_minute = _amount(args.per_minute, "per-minute rate", signed=False)
    if not 1 <= args.pulse <= MAX_PULSE:
        raise CommandError(f"--pulse {args.pulse} is invalid; expected 1 to {MAX_PULSE} seconds")
    rate = CallRate.get_or_none((CallRate.account == account.id) & (CallRate.prefix == prefix))
    if rate is None:
        rate = CallRate.create(account=account, prefix=prefix, per_minute=per_minute, pulse_sec=args.pulse)
    else:
        rate.per_minute, rate.pulse_sec = per_minute, args.pulse
        rate.save(only=[CallRate.per_minute, CallRate.pulse_sec])
    shown = prefix or "every number"
    return Output(_rate_doc(rate), f"account {cli.label(account)}: {shown} at {per_minute} {account.currency}/min,"
                                   f" {args.pulse} s pulse")


def rates_list(args) -> Output:
    account = cli.find_account(args.account)
    rates = list(CallRate.select().where(CallRate.account == account.id).order_by(CallRate.prefix))
    rows = [[r.prefix or "*", f"{r.per_minute} {account.currency}", f"{r.pulse_sec}s"] for r in rates]
    return Output({"rates": [_rate_doc(r) for r in rates]}, cli.table(["PREFIX", "PER MINUTE", "PULSE"], rows,
                                                                   empty="no rates: calls are not billed"))


def rates_remove(args) -> Output:
    account = cli.find_account(args.account)
    prefix = check_prefix(args.prefix)
    removed = CallRate.delete().where((CallRate.account == account.id) & (CallRate.prefix == prefix)).execute()
    if not removed:
        raise CommandError(f"account {cli.label(account)} has no rate for {prefix or '*'}")
    return Output({"removed": prefix}, f"removed the rate for {prefix or 'every number'}")


def wallet_show(args) -> Output:
    account = cli.find_account(args.account)
    entries = ledger.entries(account, limit=max(1, min(args.limit, 1000)))
    account = type(account).get_by_id(account.id)
    rows = [[str(e.id), cli.iso(e.created_at), e.kind, str(e.amount), str(e.balance_after),
             e.description or e.call_uuid or "-"] for e in entries]
    text = (f"account {cli.label(account)}: balance {account.balance} {account.currency}\n"
            + cli.table(["ID", "AT", "KIND", "AMOUNT", "BALANCE", "NOTE"], rows, empty="no ledger entries"))
    return Output({"account_id": account.id, "balance": str(account.balance), "currency": account.currency,
                   "entries": [_entry_doc(e) for e in entries]}, text)


def wallet_change(args, kind: str) -> Output:
    account = cli.find_account(args.account)
    amount = _amount(args.amount, "amount", signed=kind == "adjustment")
    try:
        entry = ledger.credit(account, amount, kind=kind, description=args.note)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return Output(_entry_doc(entry), f"account {cli.label(account)}: {kind} {entry.amount}, balance now"
                                     f" {entry.balance_after} {account.currency}")


def agent_destination_set(args) -> Output:
    """A number (read in the account's region, stored in E.164), an extension or a SIP
    URI, which the account's transfer policy must allow."""
    account = cli.find_account(args.account)
    destination = args.destination.strip() or None
    if destination is not None:
        try:
            destination = TransferPolicy.of(account).check(transfer_destination(destination, account.region))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    account.agent_destination = destination
    account.save(only=[type(account).agent_destination])
    return Output({"account_id": account.id, "agent_destination": destination},
                  f"account {cli.label(account)}: press-1 connect_agent goes to {destination or '(nowhere)'}")


# -- helpers ------------------------------------------------------------------------------


def _id(text: str, what: str) -> int:
    text = str(text).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise CommandError(f"{what} id {text!r} is not a number")
    return int(text)


def _clip(account, ref: str) -> AudioClip:
    clip = audio.find_clip(account.id, _id(ref, "clip"))
    if clip is None:
        raise CommandError(f"account {cli.label(account)} has no audio clip {ref}")
    return clip


def _dtmf_map(text: str) -> dict:
    try:
        return check_dtmf_map(json.loads(text))
    except json.JSONDecodeError:
        raise CommandError(f"--dtmf-map {text!r} is not JSON") from None


def _amount(text: str, what: str, *, signed: bool) -> Decimal:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise CommandError(f"{what} {text!r} is not a number") from None
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise CommandError(f"{what} {text!r} is out of range")
    if amount != amount.quantize(Decimal("0.0001")):
        raise CommandError(f"{what} {text!r} has more than 4 decimal places")
    if amount < 0 and not signed:
        raise CommandError(f"{what} {text!r} is negative")
    return amount.quantize(Decimal("0.0001"))


def _clip_doc(clip: AudioClip) -> dict:
    return {"id": clip.id, "account_id": clip.account_id, "name": clip.name, "path": clip.path,
            "duration_ms": clip.duration_ms, "size_bytes": clip.size_bytes, "original_name": clip.original_name,
            "created_at": cli.iso(clip.created_at)}


def _campaign_doc(campaign: SavedCampaign) -> dict:
    return {"id": campaign.id, "account_id": campaign.account_id, "name": campaign.name, "type": campaign.type,
            "status": campaign.status, "audio_id": campaign.audio_id, "dtmf_map": campaign.dtmf_map,
            "caller_id": campaign.caller_id, "created_at": cli.iso(campaign.created_at)}


def _rate_doc(rate: CallRate) -> dict:
    return {"account_id": rate.account_id, "prefix": rate.prefix, "per_minute": str(rate.per_minute),
            "pulse_sec": rate.pulse_sec}


def _entry_doc(entry) -> dict:
    return {"id": entry.id, "kind": entry.kind, "amount": str(entry.amount), "balance_after": str(entry.balance_after),
            "call_uuid": entry.call_uuid, "billsec": entry.billsec, "description": entry.description,
            "created_at": cli.iso(entry.created_at)}
