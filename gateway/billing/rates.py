"""Which rate applies to a number, and what a call costs; no IO.

A rate is per minute of talk (``billsec``: from answer to hangup), billed in whole pulses
of ``pulse_sec`` seconds (60: per started minute; 1: per second). Amounts are kept to 4
decimal places, rounded half up, as ``MoneyField`` stores them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

QUANTUM = Decimal("0.0001")
MAX_PREFIX_LENGTH = 16


@dataclass(frozen=True)
class Rate:
    prefix: str
    per_minute: Decimal
    pulse_sec: int = 60

    def cost(self, billsec: int) -> Decimal:
        """What ``billsec`` seconds of talk cost: whole pulses, so 61 s at a 60 s pulse is
        two minutes; 0 s costs nothing."""
        if billsec <= 0:
            return Decimal("0.0000")
        pulses = math.ceil(billsec / self.pulse_sec)
        return (self.per_minute * self.pulse_sec * pulses / 60).quantize(QUANTUM, ROUND_HALF_UP)

    @property
    def first_pulse(self) -> Decimal:
        """The least an answered call costs: one pulse."""
        return self.cost(1)


def best_rate(rates: Iterable[Rate], number: str) -> Rate | None:
    """The rate with the longest prefix of ``number`` (E.164), or None if none applies."""
    best = None
    for rate in rates:
        if number.startswith(rate.prefix) and (best is None or len(rate.prefix) > len(best.prefix)):
            best = rate
    return best


def check_prefix(prefix: str) -> str:
    """A rate prefix: '' (every number) or ``+`` and 1-15 digits."""
    text = (prefix or "").strip()
    if text in ("", "*"):
        return ""
    if not text.startswith("+"):
        text = "+" + text
    digits = text[1:]
    if not (digits.isascii() and digits.isdigit() and 1 <= len(digits) <= MAX_PREFIX_LENGTH - 1):
        raise ValueError(f"rate prefix {prefix!r} is invalid; expected + and 1 to 15 digits, or '' for every number")
    return text
