"""The outbound legs the gateway places: which destinations it dials, and the channel
variables every leg gets.

The dial string's syntax (how a value is quoted inside ``{…}``) is FreeSWITCH's and lives
with the other commands in ``gateway.esl.commands``; what is decided here is the gateway's.
"""

from __future__ import annotations

import re

from gateway import dialplan_names as names
from gateway.esl import commands

_NUMBER = re.compile(r"^\+?[0-9A-Za-z*#.@:_-]{1,64}$")


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
    media would stay parked for ever.  ``send_silence_when_idle``: without it a parked
    leg plays nothing of a bot streamed by a bidirectional mod_audio_stream.
    """
    pairs = {
        "origination_uuid": uuid,
        "origination_caller_id_number": caller_id_number,
        "origination_caller_id_name": caller_id_name or caller_id_number,
        "originate_timeout": str(int(timeout)),
        "ignore_early_media": "true",
        **names.MEDIA_TIMEOUT_VARIABLES,
        **names.STREAM_CHANNEL_VARIABLES,
        **(variables or {}),
    }
    return commands.originate(pairs, endpoint, app)
