"""What the public calling API's views share: numbers, caller IDs, balance, placement
failures and id look-ups."""
from __future__ import annotations

from datetime import datetime

import phonenumbers
from phonenumbers import region_code_for_number

from gateway.billing.ledger import can_afford
from gateway.campaigns.runs import parse_run_label, run_label
from gateway.domain import FINAL, Status
from gateway.models import Account, Call, OtpRequest, PhoneNumber, PublicRun, utcnow
from gateway.numbering import InvalidNumber, normalize, normalize_caller_id
from gateway.otp import service as otp_service
from gateway.uuids import parse_uuid

from . import envelope
from .schemas import CALLER_ID, number_required

QUEUED = "Call queued."
OTP_QUEUED = "Verification call queued."
CALL_NOT_FOUND = "Call not found."
NO_CALLER_ID = "No caller ID is configured for this account. Please contact support."
INSUFFICIENT_BALANCE = "Insufficient wallet balance to place this call. Please recharge your wallet and retry."
PLACEMENT_FAILED = "Could not place the call right now. Please retry."


def recipient(value: str, account: Account) -> str:
    """The recipient's number in E.164: a mobile number of the account's region, read in
    that region (``9812345678``, ``919812345678`` and ``+919812345678`` for an ``IN``
    account). Numbers of other countries are refused: the API calls its own country, and
    says which (``A valid mobile number for Brazil is required.``; the contract's sentence,
    naming India, for an ``IN`` account)."""
    try:
        number = normalize(value, account.region, mobile_only=True)
    except (InvalidNumber, ValueError):
        envelope.abort(400, number_required(account.region))
    if account.region and region_code_for_number(phonenumbers.parse(number)) != account.region.upper():
        envelope.abort(400, number_required(account.region))
    return number


def caller_number(account: Account, requested: str | None) -> str:
    """The number the call shows: ``requested`` if it is the account's default caller ID or
    one of its active numbers, else the default."""
    default = None
    if account.default_caller_id:
        try:
            default = normalize_caller_id(account.default_caller_id, account.region)
        except (InvalidNumber, ValueError):
            default = None
    if requested is None or not str(requested).strip():
        if default is None:
            envelope.abort(400, NO_CALLER_ID)
        return default
    try:
        wanted = normalize_caller_id(requested, account.region)
    except (InvalidNumber, ValueError):
        envelope.abort(400, CALLER_ID)
    if wanted == default:
        return wanted
    owned = PhoneNumber.select().where((PhoneNumber.account == account.id) & (PhoneNumber.e164 == wanted)
                                       & (PhoneNumber.active == True)).exists()  # noqa: E712
    if not owned:
        envelope.abort(400, CALLER_ID)
    return wanted


def require_balance(account: Account, number: str) -> None:
    if not can_afford(account, number):
        envelope.abort(403, INSUFFICIENT_BALANCE)


def placement_failed():
    envelope.abort(503, PLACEMENT_FAILED)


def seconds_since(start: datetime | None) -> int:
    if start is None:
        return 0
    return max(0, int((utcnow() - start).total_seconds()))


def talk_seconds(call: Call) -> int:
    """Talk time so far: ``billsec`` once ended, the time since the answer while live."""
    if Status(call.status) in FINAL:
        return call.billsec or 0
    if call.status == "in_progress":
        return seconds_since(call.answered_at)
    return 0


def public_id(call: Call) -> str:
    return run_label(call.campaign_id) if call.campaign_id is not None else call.uuid


def find_call(account_id: int, unique_id: str) -> Call | None:
    """The account's call behind ``run_<n>`` or a call id; None otherwise."""
    run_id = parse_run_label(unique_id)
    if run_id is not None:
        run = PublicRun.get_or_none((PublicRun.id == run_id) & (PublicRun.account == account_id))
        if run is None or run.call_uuid is None:
            return None
        return Call.get_or_none((Call.uuid == run.call_uuid) & (Call.account == account_id))
    canonical = parse_uuid(unique_id)
    if canonical is None:
        return None
    return Call.get_or_none((Call.uuid == canonical) & (Call.account == account_id))


def find_verification(account_id: int, unique_id: str) -> OtpRequest | None:
    if parse_run_label(unique_id) is not None:
        return None
    return otp_service.find(account_id, unique_id)
