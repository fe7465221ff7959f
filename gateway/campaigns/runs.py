"""API runs: one call placed through the public calling API, and the script it plays.

A run is created with its call in one transaction (``PublicRun`` then ``Call`` with
``campaign_id`` = the run's id, which is what ``run_<n>`` shows), then the call is
originated. When it is answered, :func:`script_for` rebuilds its script from these rows.

Verification calls are not runs (their public id is the verification request's); both
are placed with ``gateway.calls.placement``.
"""
from __future__ import annotations

import logging
import wave
from dataclasses import dataclass

from gateway import recordings
from gateway.calls.placement import place
from gateway.calls.scripts import AudioBlast, Press1, Script, check_dtmf_map
from gateway.calls.transfer_policy import allowed_agent_destination
from gateway.domain import Surface
from gateway.models import Account, AudioClip, Call, PublicRun, SavedCampaign

logger = logging.getLogger(__name__)

RUN_PREFIX = "run_"
_MAX_RUN_ID = 2**63 - 1


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


def start_run(controller, account: Account, request: RunRequest) -> tuple[PublicRun, Call]:
    """Create the run and place its call (``PlacementFailed`` if FreeSWITCH cannot take it)."""
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

    call = place(controller, account, request.to_number, request.from_number, surface=Surface.PUBLIC.value,
                 before=create_run, reference_id=request.reference_id)
    return holder["run"], call


def clip_seconds(path: str) -> float:
    try:
        with wave.open(path, "rb") as wav:
            return wav.getnframes() / (wav.getframerate() or 8000)
    except (OSError, EOFError, wave.Error):
        return 60.0  # unknown: wait as for a long clip


def script_for(controller, call: Call) -> Script | None:
    """The script of an answered run call, or None if ``call`` is not one."""
    if call.surface != Surface.PUBLIC or call.campaign_id is None:
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
