"""``GET /calls``: the account's calls, newest first, filtered and paginated.

Every filter is served by an index that leads with the account (``Call.Meta.indexes``):
``(account, created_at)`` for the plain list and the time range, ``(account, status,
created_at)``, ``(account, direction, created_at)``, ``(account, to_number, created_at)``
and ``(account, from_number, created_at)`` (the number filter is the union of the last
two), ``(account, reference_id)``. Rows are ordered by ``created_at`` then ``uuid``, so
pages are stable when timestamps tie.

Totals and deep pages do not scan history: without a number or reference_id filter, the
time range is split into per-day segments whose counts are mostly precomputed
(``gateway.calls.day_counts``), and a page skips only the rows of the segment its offset falls in. With a
number or reference_id, the count and the skip run over that filter's own index range,
bounded by how many calls match it.

Past ``DEFERRED_FROM`` rows of offset, a page is fetched in two steps: its keys first,
then only those rows.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberFormat

from gateway.calls import day_counts
from gateway.models import Account, Call
from gateway.numbering import InvalidNumber, normalize
from gateway.webhooks.events import public_call_object

from . import envelope
from .schemas import FROM, LIST_NUMBER, PER_PAGE_MAX, TO

# Columns of the call object; the wide ones (transcript, analysis…) are never read.
COLUMNS = (Call.uuid, Call.account, Call.direction, Call.from_number, Call.to_number, Call.status,
           Call.end_reason, Call.hangup_cause, Call.billsec, Call.campaign_id, Call.reference_id,
           Call.created_at, Call.surface)
#: Below this offset a page is read in one query; past it, keys first (see above).
DEFERRED_FROM = 1000

_SPACED_OFFSET = re.compile(r"(T[\d:.]+) (\d{2}(:?\d{2})?)$")
#: The instants every bound is held within: an ISO 8601 date of year 1 or 9999 is valid, but
#: it or its day would not fit a datetime once moved to UTC (``day_counts`` works in UTC days).
#: No call lies outside, so a bound past them selects what it would have.
EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)


def zone_of(account: Account):
    try:
        return ZoneInfo(account.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def parse_instant(text: str, zone, message: str) -> datetime:
    """An ISO 8601 date (midnight in the account's time zone) or timestamp (without an
    offset: in the account's time zone), held within ``EARLIEST`` and ``LATEST``. A ``+``
    of the offset that arrived as a space (an unencoded query string) is put back."""
    value = (text or "").strip()
    value = _SPACED_OFFSET.sub(r"\1+\2", value)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        envelope.abort(400, message)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return min(max(moment, EARLIEST), LATEST)


def number_forms(text: str, account: Account) -> list[str]:
    """The forms a number may be stored in: E.164 (outbound calls), and the forms a caller
    ID arrives in from a carrier (``919812345678``, ``09812345678``, ``9812345678``), as
    inbound calls keep it as FreeSWITCH reported it."""
    raw = (text or "").strip()
    try:
        e164 = normalize(raw, account.region)
    except (InvalidNumber, ValueError):
        envelope.abort(400, LIST_NUMBER)
    parsed = phonenumbers.parse(e164)
    national = "".join(ch for ch in phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL) if ch.isdigit())
    return sorted({e164, e164[1:], str(parsed.national_number), national})


def page_of(account: Account, args: dict) -> dict:
    """The answer's ``data`` and ``pagination``."""
    page = args.get("page") or 1
    per_page = min(args.get("per_page") or 50, PER_PAGE_MAX)
    offset = (page - 1) * per_page
    zone = zone_of(account)
    lo = parse_instant(args["from_"], zone, FROM) if args.get("from_") else None
    hi = parse_instant(args["to"], zone, TO) if args.get("to") else None
    base = Call.select(*COLUMNS).where(Call.account == account.id)
    if args.get("direction"):
        base = base.where(Call.direction == args["direction"])
    if args.get("status"):
        base = base.where(Call.status == args["status"])
    ranged = base
    if lo is not None:
        ranged = ranged.where(Call.created_at >= lo)
    if hi is not None:
        ranged = ranged.where(Call.created_at < hi)
    if args.get("number") or args.get("reference_id"):
        # Selective filters: counted and skipped over their own index ranges.
        query = ranged
        if args.get("number"):
            forms = number_forms(args["number"], account)
            # A union of two index ranges: SQLite plans "a IN … OR b IN …" as a scan.
            as_recipient = Call.select(Call.uuid).where((Call.account == account.id) & Call.to_number.in_(forms))
            as_caller = Call.select(Call.uuid).where((Call.account == account.id) & Call.from_number.in_(forms))
            query = query.where(Call.uuid.in_(as_recipient | as_caller))
        if args.get("reference_id"):
            query = query.where(Call.reference_id == args["reference_id"])
        total = query.count()
        rows = _fetch(query, offset, per_page) if offset < total else []
    else:
        found = day_counts.segments(account.id, base, lo, hi, direction=args.get("direction"),
                                 status=args.get("status"))
        total = sum(segment.count for segment in found)
        rows = []
        skip = offset
        for segment in found:
            if skip < segment.count:
                query = ranged if segment.upper is None else ranged.where(Call.created_at < segment.upper)
                rows = _fetch(query, skip, per_page)
                break
            skip -= segment.count
    return {
        "data": [public_call_object(call, account) for call in rows],
        "pagination": {"page": page, "per_page": per_page, "total": total,
                       "total_pages": math.ceil(total / per_page) if total else 0},
    }


def _fetch(query, offset: int, limit: int) -> list[Call]:
    ordered = query.order_by(Call.created_at.desc(), Call.uuid.desc())
    if offset < DEFERRED_FROM:
        return list(ordered.limit(limit).offset(offset))
    keys = [uuid for (uuid,) in ordered.select(Call.uuid).limit(limit).offset(offset).tuples()]
    if not keys:
        return []
    return list(Call.select(*COLUMNS).where(Call.uuid.in_(keys)).order_by(Call.created_at.desc(), Call.uuid.desc()))
