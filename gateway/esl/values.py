"""How FreeSWITCH reads a channel variable as a flag.

A leaf module (it imports nothing of the gateway), so the simulator may use it too.
"""

from __future__ import annotations

#: The words ``switch_true`` takes for yes, compared without regard to case.
TRUE_WORDS = frozenset({"yes", "on", "true", "t", "enabled", "active", "allow"})


def switch_true(value: str | None) -> bool:
    """FreeSWITCH's ``switch_true`` (``switch_utils.h``): one of :data:`TRUE_WORDS` in any
    case, or a number whose integer part is not zero.

    As there, the value is taken as it is, blanks included (``" yes"`` is false), and a
    number is an optional sign then digits and dots only (``switch_is_number``), read as
    ``atoi`` reads it: ``"1.5"`` is true, ``"0.9"`` and ``""`` are false.
    """
    if value is None:
        return False
    if value.lower() in TRUE_WORDS:
        return True
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not all(ch == "." or "0" <= ch <= "9" for ch in digits):
        return False
    whole = digits.partition(".")[0]
    return bool(whole) and int(whole) != 0
