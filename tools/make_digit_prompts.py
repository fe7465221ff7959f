"""Make the digit prompts an OTP call plays (gateway/otp/prompts/0.wav … 9.wav).

Each is the digit's English word spoken by flite's ``kal`` voice, the voice FreeSWITCH's
mod_flite speaks the rest of a verification call with (``speak flite|kal|…``), as 8 kHz
mono 16-bit WAV with the silence before and after the word cut to 20 ms.

    apt-get install flite && python tools/make_digit_prompts.py

The files are checked in; run this only to remake them.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RATE = 8000
THRESHOLD = 200  # of 32767: quieter than this, before the first and after the last sound, is cut
MARGIN = RATE // 50  # 20 ms kept each side
OUT = Path(__file__).resolve().parents[1] / "gateway" / "otp" / "prompts"


def spoken(word: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "word.wav"
        subprocess.run(["flite", "-voice", "kal", "-t", word, "-o", str(path)], check=True)
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
                sys.exit(f"flite's kal voice did not give 8 kHz mono 16-bit audio for {word!r}")
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def trimmed(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > THRESHOLD)
    if not len(loud):
        sys.exit("flite gave silence")
    return samples[max(0, loud[0] - MARGIN):loud[-1] + MARGIN]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for digit, word in enumerate(WORDS):
        samples = trimmed(spoken(word))
        with wave.open(str(OUT / f"{digit}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(samples.astype("<i2").tobytes())
        print(f"{digit}.wav: {word}, {len(samples) / RATE:.2f} s")


if __name__ == "__main__":
    main()
