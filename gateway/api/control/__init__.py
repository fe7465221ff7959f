"""``/api``: live call control (contract: call-control-and-bot-media.txt).

Endpoints (``calls.py``)::

    POST /api/calls                place a call; its media goes to socket_url, or the
                                   routing webhook_url decides, or the account defaults
    POST /api/calls/hangup         hang a live call up
    POST /api/calls/transfer       blind transfer: PSTN number, extension or SIP URI
    POST /api/calls/redirect       switch the media driver of a live call
    GET  /api/calls/{call_uuid}    read a call

Authentication: ``X-API-KEY: sk_live_…`` (``Authorization: Bearer`` too); scopes
``calls:write`` (place, control) and ``calls:read``. A key that belongs to one agent
(``owner_agent``) is refused here (403): call control is account-wide. Errors are
``{"error": "…"}``; another account's call answers exactly like an unknown one (404).

Status vocabulary. The contract's status callbacks speak Twilio's words
(``in-progress``, ``completed``); this surface uses them for every status:

===========  ============  ===============
status       end_reason    /api status
===========  ============  ===============
queued                     queued
ringing                    ringing
in_progress                in-progress
completed                  completed
missed       no_answer     no-answer
missed       canceled      canceled
failed       busy          busy
failed       rejected      busy
failed       canceled      canceled
failed       (other)       failed
===========  ============  ===============
"""

from __future__ import annotations

from gateway.calls.states import StatusWords
from gateway.models import Call

_WORDS = StatusWords(
    live={"queued": "queued", "ringing": "ringing", "in_progress": "in-progress", "completed": "completed"},
    ended={"no_answer": "no-answer", "canceled": "canceled", "busy": "busy", "rejected": "busy"},
    missed="no-answer",
)


def api_status(call: Call) -> str:
    """The call's status in this surface's vocabulary (the table above)."""
    return _WORDS.of(call.status, call.end_reason)


def register(api) -> None:
    from gateway.api.control.calls import blp

    api.register_blueprint(blp)
