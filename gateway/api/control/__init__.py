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

Status words: the call-control contract's status callbacks speak Twilio's words
(``in-progress``, ``no-answer``); this surface uses them for every status
(``gateway.domain.STATUS_WORDS``).
"""

from __future__ import annotations

from gateway.domain import Surface, status_word
from gateway.models import Call


def api_status(call: Call) -> str:
    """The call's status in this surface's words."""
    return status_word(Surface.CONTROL, call.status, call.end_reason)

