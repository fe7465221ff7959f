"""API runs: one call placed through the public calling API, and the script it plays.

A run is created with its call in one transaction (``PublicRun`` then ``Call`` with
``campaign_id`` = the run's id, which is what ``run_<n>`` shows), then the call is
originated. When it is answered, :func:`script_for` rebuilds its script from these rows.

Verification calls are not runs (their public id is the verification request's), but
they are placed the same way, with :func:`place`.
"""
from __future__ import annotations

import logging
import uuid as uuidlib
import wave
from dataclasses import dataclass
from typing import Callable

from gateway import recordings
from gateway.calls.controller import CallError
from gateway.calls.scripts import AudioBlast, Press1, Script, check_dtmf_map
from gateway.calls.transfer_policy import allowed_agent_destination
from gateway.models import Account, AudioClip, Call, PublicRun, SavedCampaign, database

logger = logging.getLogger(__name__)

SURFACE = "public"
RUN_PREFIX = "run_"
_MAX_RUN_ID = 2**63 - 1


class PlacementFailed(Exception):
    """FreeSWITCH could not take the call now (no node connected, the node refused)."""


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, already checked (number in E.164, clip of the account)."""

    type: str  # audio_blast | press1
    to_number: str
    from_number: str
    clip: AudioClip
    dtmf_map: dict | None = None
    reference_id: str | None = None
    campaign: SavedCampaign | None = None


def run_label(run_id: int) -> str:
    return f"{RUN_PREFIX}{run_id}"


def parse_run_label(text: str) -> int | None:
    """``run_4821`` → 4821; None for anything else."""
    if not isinstance(text, str) or not text.startswith(RUN_PREFIX):
        return None
    digits = text[len(RUN_PREFIX):]
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19 or int(digits) > _MAX_RUN_ID:
        return None
    return int(digits)


def prepare(controller, account: Account, to_number: str, from_number: str, *,
            before: Callable[[str], int | None] | None = None, reference_id: str | None = None):
    """Pick a node and write the call's row, and through ``before(call_uuid)`` what owns it
    (it returns the run id, or None), in one transaction. Returns ``(call, node)``; the
    caller commits (if it has a transaction open) and then calls :func:`originate`."""
    try:
        node = controller.pick_node()
    except CallError as exc:
        raise PlacementFailed(str(exc)) from None
    call_uuid = str(uuidlib.uuid4())
    with database.atomic():
        run_id = before(call_uuid) if before is not None else None
        call = Call.create(
            uuid=call_uuid, account=account.id, direction="outbound", from_number=from_number,
            to_number=to_number, node=node.name, surface=SURFACE, campaign_id=run_id,
            reference_id=reference_id, job_uuid=str(uuidlib.uuid4()),
        )
    return call, node


def originate(controller, call: Call, node) -> None:
    """Send the originate of a committed call row; ``PlacementFailed`` if FreeSWITCH did not
    take it (the controller then marks the call failed)."""
    try:
        controller.place(call, node)
    except CallError as exc:
        raise PlacementFailed(str(exc)) from None


def place(controller, account: Account, to_number: str, from_number: str, *,
          before: Callable[[str], int | None] | None = None, reference_id: str | None = None) -> Call:
    """:func:`prepare`, then :func:`originate`. ``PlacementFailed`` if no FreeSWITCH node
    can take the call (the rows stay, the call marked failed)."""
    call, node = prepare(controller, account, to_number, from_number, before=before, reference_id=reference_id)
    originate(controller, call, node)
    return call


def start_run(controller, account: Account, request: RunRequest) -> tuple[PublicRun, Call]:
    """Create the run and place its call."""
    holder: dict = {}

    def create_run(call_uuid: str) -> int:
        run = PublicRun.create(
            account=account.id, type=request.type, campaign=request.campaign, audio=request.clip,
            audio_path=request.clip.path,
            dtmf_map=check_dtmf_map(request.dtmf_map) if request.type == "press1" else None,
            to_number=request.to_number, call_uuid=call_uuid, reference_id=request.reference_id,
        )
        holder["run"] = run
        return run.id

    call = place(controller, account, request.to_number, request.from_number, before=create_run,
                 reference_id=request.reference_id)
    return holder["run"], call


def find_run(account_id: int, run_id: int) -> PublicRun | None:
    return PublicRun.get_or_none((PublicRun.id == run_id) & (PublicRun.account == account_id))


def clip_seconds(path: str) -> float:
    try:
        with wave.open(path, "rb") as wav:
            return wav.getnframes() / (wav.getframerate() or 8000)
    except (OSError, EOFError, wave.Error):
        return 60.0  # unknown: wait as for a long clip


def script_for(controller, call: Call) -> Script | None:
    """The script of an answered run call, or None if ``call`` is not one."""
    if call.surface != SURFACE or call.campaign_id is None:
        return None
    run = PublicRun.get_or_none(PublicRun.id == call.campaign_id)
    if run is None or run.call_uuid != call.uuid or not run.audio_path:
        return None
    record_to = str(recordings.register(call, recordings.recording_path(call)).path)
    seconds = clip_seconds(run.audio_path)
    if run.type == "audio_blast":
        return AudioBlast(controller, call.uuid, call.node, clip_path=run.audio_path, clip_seconds=seconds,
                          record_to=record_to)
    if run.type == "press1":
        account = Account.get_by_id(call.account_id)

        def on_result(digit, action, run_id=run.id):
            PublicRun.update(pressed=digit, action=action).where(PublicRun.id == run_id).execute()

        return Press1(controller, call.uuid, call.node, clip_path=run.audio_path, clip_seconds=seconds,
                      dtmf_map=check_dtmf_map(run.dtmf_map), agent_destination=allowed_agent_destination(account),
                      record_to=record_to, on_result=on_result)
    return None
