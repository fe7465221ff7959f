"""Where audio files live, and call recordings.

One media directory holds the account audio library (``clips/<account>/``) and the call
recordings (``recordings/<account>/<yyyy>/<mm>/<call uuid>.wav``). FreeSWITCH reads the
clips (``playback <path>``) and writes the recordings (``record_session <path>``) at these
paths, so the directory must be the same path on the FreeSWITCH host and on the gateway
host (the same machine, as the Vagrant deployment installs it, or a shared mount).

It is the ``GATEWAY_MEDIA_DIR`` setting (environment or config file, ``gateway.config``),
else ``voicegw-media`` in the working directory.

A recording is registered (``Recording`` row) when the call's script is built, on answer;
the script then runs ``record_session <path>`` first (``gateway.calls.scripts``), and
FreeSWITCH records both directions until hangup. It is served once the call has ended
and the file holds audio.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from gateway.domain import FINAL, Status
from gateway.config import Settings
from gateway.models import Call, Recording

logger = logging.getLogger(__name__)

#: What each stored audio extension is served as.
CONTENT_TYPES = {".wav": "audio/wav", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg"}
#: A WAV file holding no more than its header has no audio.
WAV_HEADER_BYTES = 44


def media_root() -> Path:
    """The media directory, absolute (FreeSWITCH is given absolute paths), as the process's
    settings say now: ``voicegw --config FILE`` names the file for the whole process."""
    return Settings.from_env().media_dir


def content_type_for(path: str | os.PathLike) -> str:
    return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def recording_path(call: Call, root: Path | None = None) -> Path:
    created = call.created_at
    return (root or media_root()) / "recordings" / str(call.account_id) / f"{created:%Y}" / f"{created:%m}" / (
        f"{call.uuid}.wav")


def register(call: Call, path: Path) -> Recording:
    """Note that ``call`` is being recorded to ``path`` (idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    recording = Recording.get_or_none(Recording.call_uuid == call.uuid)
    if recording is None:
        recording = Recording.create(call_uuid=call.uuid, account=call.account_id, path=str(path),
                                     content_type=content_type_for(path))
    return recording


def available(call: Call) -> Recording | None:
    """The call's recording if it can be served: the call has ended and the file holds audio."""
    if Status(call.status) not in FINAL:
        return None
    recording = Recording.get_or_none(Recording.call_uuid == call.uuid)
    if recording is None:
        return None
    try:
        size = os.path.getsize(recording.path)
    except OSError:
        return None
    return recording if size > WAV_HEADER_BYTES else None
