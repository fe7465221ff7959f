"""FreeSWITCH dial strings and API arguments, quoted the way FreeSWITCH parses them.

``originate`` splits its arguments on spaces (``'…'`` groups a value with spaces) and a
``{a=b,c=d}`` block splits on commas (``\\,`` keeps one).  Anything we put in a channel
variable must survive both, and must never smuggle in another variable or a newline.
FreeSWITCH does not expand a value when originate sets it, but it expands a variable's
value again wherever it is referenced later (``${origination_caller_id_name}`` in a
dialplan, ``switch_channel_expand_variables_check``), so a value loses the characters of a
reference (``$ { }``) and of its escapes (``\\``) here (``gateway.esl.app_args``).
"""

from __future__ import annotations

import re

from gateway import dialplan_names as names

_NUMBER = re.compile(r"^\+?[0-9A-Za-z*#.@:_-]{1,64}$")


def quote_var(value: str) -> str:
    """A channel-variable value safe inside ``{…}`` of an originate."""
    text = "".join(ch for ch in str(value) if ch >= " " and ch != "\x7f")
    text = text.replace("'", "").replace("\\", "").replace("{", "").replace("}", "").replace("$", "")
    text = text.replace(",", "\\,")
    return f"'{text}'" if " " in text else text


def check_dialable(number: str) -> str:
    """Refuse a destination that could change the dial string's meaning."""
    if not _NUMBER.match(number):
        raise ValueError(f"not a dialable destination: {number!r}")
    return number


def originate_command(
    uuid: str,
    endpoint: str,
    caller_id_number: str,
    caller_id_name: str = "",
    timeout: int = 60,
    variables: dict[str, str] | None = None,
    app: str = "&park()",
) -> str:
    """``originate {vars}<endpoint> <app>`` for a leg whose uuid we chose.

    ``ignore_early_media=true``: FreeSWITCH otherwise returns from originate on a 183
    and stops applying ``originate_timeout``, so an unanswered call that plays early
    media would stay parked for ever.
    """
    pairs = {
        "origination_uuid": uuid,
        "origination_caller_id_number": caller_id_number,
        "origination_caller_id_name": caller_id_name or caller_id_number,
        "originate_timeout": str(int(timeout)),
        "ignore_early_media": "true",
        **names.MEDIA_TIMEOUT_VARIABLES,
        **(variables or {}),
    }
    block = ",".join(f"{name}={quote_var(value)}" for name, value in pairs.items())
    return f"originate {{{block}}}{endpoint} {app}"
