"""What the callee of a verification call heard; no tests here."""
from __future__ import annotations

from gateway.otp import readout


def heard_codes(channel) -> list[str]:
    """The digits in each audio file the simulator's channel played (``played_audio``): every
    file must be digit prompts, each followed by the readout's pause."""
    gap = b"\x00\x00" * (readout.RATE * readout.GAP_MS // 1000)
    heard = []
    for pcm in channel.played_audio:
        digits, at = "", 0
        while at < len(pcm):
            digit = next((d for d in "0123456789" if pcm.startswith(readout.prompt(d) + gap, at)), None)
            assert digit is not None, f"audio at byte {at} is no digit prompt"
            digits += digit
            at += len(readout.prompt(digit) + gap)
        heard.append(digits)
    return heard
