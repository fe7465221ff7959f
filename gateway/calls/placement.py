"""Placing an outbound call, for every surface: its row first, then its originate.

The row is written whole, with everything the placing surface knows about the call (its
surface, agent, contact, custom arguments, the run that owns it), before ``originate`` is
sent (``CallController.place``), so no event or webhook about the call can see it
without its owner. :func:`prepare` picks a node and writes the row (and, through
``before``, what owns the call) in one transaction; :func:`originate` sends it;
:func:`place` does both.
"""
from __future__ import annotations

import uuid as uuidlib
from typing import Callable

from gateway.calls.errors import CallError
from gateway.domain import Direction
from gateway.models import Account, Call, database


class PlacementFailed(CallError):
    """FreeSWITCH cannot take the call now (no node is connected, or the node refused);
    ``code`` is the controller's hint (503 for no node)."""


def prepare(controller, account: Account, to_number: str, from_number: str, *, surface: str | None,
            before: Callable[[str], int | None] | None = None, **fields):
    """Pick a node and write the call's row, ``queued``, with ``fields`` (``Call``'s
    columns), and through ``before(call_uuid)`` what owns it (it returns the id of the run
    the call belongs to, its ``campaign_id``, or None), in one transaction. Returns
    ``(call, node)``; send it with :func:`originate`."""
    try:
        node = controller.pick_node()
    except CallError as exc:
        raise PlacementFailed(str(exc), exc.code) from None
    call_uuid = str(uuidlib.uuid4())
    with database.atomic():
        run_id = before(call_uuid) if before is not None else None
        call = Call.create(
            uuid=call_uuid, account=account.id, direction=Direction.OUTBOUND.value, from_number=from_number,
            to_number=to_number, node=node.name, surface=surface, campaign_id=run_id,
            job_uuid=str(uuidlib.uuid4()), **fields,
        )
    return call, node


def originate(controller, call: Call, node) -> None:
    """Send the originate of a committed call row; ``PlacementFailed`` if FreeSWITCH did not
    take it (the controller then marks the call failed)."""
    try:
        controller.place(call, node)
    except CallError as exc:
        raise PlacementFailed(str(exc), exc.code) from None


def place(controller, account: Account, to_number: str, from_number: str, *, surface: str | None,
          before: Callable[[str], int | None] | None = None, **fields) -> Call:
    """:func:`prepare`, then :func:`originate`. ``PlacementFailed`` if no FreeSWITCH node
    can take the call (a row written stays, the call marked failed)."""
    call, node = prepare(controller, account, to_number, from_number, surface=surface, before=before, **fields)
    originate(controller, call, node)
    return call
