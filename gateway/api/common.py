"""What the views of several surfaces share: the gateway they serve, id and number
parsing, call look-ups, placing a call."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from gateway.api.errors import fail
from gateway.calls import placement
from gateway.models import Call
from gateway.numbering import InvalidNumber, normalize, normalize_caller_id
from gateway.uuids import parse_uuid


def gateway():
    """The ``Gateway`` this app serves."""
    return current_app.config["GATEWAY"]


def find_call(account_id: int, call_uuid: str, agent_id: int | None = None) -> Call | None:
    """The account's call with this uuid (and this agent's, if given); None otherwise,
    whether it does not exist or belongs to someone else."""
    canonical = parse_uuid(call_uuid)
    if canonical is None:
        return None
    query = Call.select().where((Call.uuid == canonical) & (Call.account == account_id))
    if agent_id is not None:
        query = query.where(Call.agent == agent_id)
    return query.get_or_none()


def seconds_between(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None:
        return 0
    return max(0, int((end - start).total_seconds()))


def normalize_number(field: str, value: str, region: str, *, caller_id: bool = False) -> str:
    """``value`` in E.164, read in ``region``; a 400 naming ``field`` if it is no valid
    number (a caller ID: no possible one, ``gateway.numbering.normalize_caller_id``)."""
    try:
        return normalize_caller_id(value, region) if caller_id else normalize(value, region)
    except InvalidNumber as exc:
        fail(400, f"{field}: {exc}")


def place_call(account, *, to_number: str, from_number: str, surface: str, unavailable: str | None = None,
               **fields) -> Call:
    """Place a call (``gateway.calls.placement``) with ``fields``, ``Call``'s columns; a
    FreeSWITCH that cannot take it is the error its hint names (503 for no node), said
    with ``unavailable`` if given (a surface whose clients need not know what a switch is)."""
    try:
        return placement.place(gateway().controller, account, to_number, from_number, surface=surface, **fields)
    except placement.PlacementFailed as exc:
        fail(exc.code, unavailable or str(exc))
