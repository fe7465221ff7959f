"""A verification code as audio: the digits a call plays, never given to FreeSWITCH as text.

Why not ``speak`` the code: FreeSWITCH logs every application it runs with its argument at
INFO (``EXECUTE [depth=1] <channel> speak(flite|kal|… 4 8 2 1 …)``, 1.10.12
``switch_core_session_exec``; the shipped log level is info), puts the argument in the
CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE events (``Application-Data``), in the channel
variable ``current_application_data`` (so in the ``variable_*`` headers of every later event
of the call) and in ``last_arg`` at hangup. A channel variable would travel the same way.

So the call speaks the client's words with ``speak`` and plays the code from a WAV file:
its digits, each one of the prompts shipped in ``prompts/`` (flite's ``kal`` voice, the
voice of the rest of the call, 8 kHz mono 16-bit; ``tools/make_digit_prompts.py``), with a
pause after each. The file is written when the call is answered, under the media directory
(FreeSWITCH reads it at the same path) as ``otp/<32 random hex digits>.wav``, so the name
FreeSWITCH logs says nothing about the code, and it is deleted when the call's script ends.
Files a crashed process left behind are deleted by the next write, once older than
``STALE_AFTER``.
"""
from __future__ import annotations

import functools
import logging
import os
import secrets
import time
import wave
from pathlib import Path

from gateway.recordings import media_root

logger = logging.getLogger(__name__)

PROMPTS = Path(__file__).with_name("prompts")
RATE = 8000
#: Silence after each digit, so that "4 4" is heard as two fours.
GAP_MS = 300
#: Age after which a readout file left behind (the process died mid-call) is deleted.
STALE_AFTER = 3600.0
SUBDIR = "otp"


@functools.cache
def prompt(digit: str) -> bytes:
    """The PCM (8 kHz mono s16le) of one digit's prompt."""
    if len(digit) != 1 or digit not in "0123456789":
        raise ValueError(f"not a digit: {digit!r}")
    with wave.open(str(PROMPTS / f"{digit}.wav"), "rb") as wav:
        return wav.readframes(wav.getnframes())


def render(code: str) -> bytes:
    """The PCM a call plays for ``code``: each digit's prompt, then a pause."""
    gap = b"\x00\x00" * (RATE * GAP_MS // 1000)
    return b"".join(prompt(digit) + gap for digit in code)


def seconds(code: str) -> float:
    return len(render(code)) / (2 * RATE)


def write(code: str, root: Path | None = None) -> Path:
    """Write the audio of ``code`` to a new randomly named file; returns its path."""
    directory = (root or media_root()) / SUBDIR
    directory.mkdir(parents=True, exist_ok=True)
    _sweep(directory)
    path = directory / f"{secrets.token_hex(16)}.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(render(code))
    return path


def discard(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not delete a verification readout: %s", exc.strerror)


def _sweep(directory: Path) -> None:
    cutoff = time.time() - STALE_AFTER
    for entry in os.scandir(directory):
        try:
            if entry.is_file() and entry.name.endswith(".wav") and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            continue  # gone meanwhile, or not ours to delete: the next write tries again
