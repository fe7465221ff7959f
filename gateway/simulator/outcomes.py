"""What the far end does with an outbound call, chosen from the dialled number.

The rule (by the **last three digits** of the dialled number, i.e. ``<number>`` in
``sofia/gateway/<gw>/<number>``, ``<user>`` in ``sofia/<profile>/<user>@<host>`` and
``<ext>`` in ``user/<ext>``; a number with fewer than three digits never matches a code):

======  ==================================================================  =========================================
ending  far end                                                             result (Hangup-Cause / originate reply)
======  ==================================================================  =========================================
486     100 Trying, then 486 Busy Here                                      USER_BUSY (17), sip_term_status 486
603     100 Trying, then 603 Decline                                        CALL_REJECTED (21), sip_term_status 603
404     100 Trying, then 404 Not Found                                      UNALLOCATED_NUMBER (1), 404
480     180 Ringing, never answers; FreeSWITCH CANCELs at originate_timeout NO_ANSWER (19), send_cancel
        (``originate_timeout`` var or the API timeout argument, default 60 s)
503     unreachable: no response at all, the transaction fails at once    NORMAL_TEMPORARY_FAILURE (41), local 503
        (as when the host sends ICMP port unreachable)
408     no response at all: SIP timer B fires after 32 s, or               RECOVERY_ON_TIMER_EXPIRE (102), local 408;
        originate_timeout first if it is shorter                           NO_ANSWER if the timeout came first
487     180 Ringing, then 487 Request Terminated                            ORIGINATOR_CANCEL (487)
183     183 Session Progress with SDP (early media) at once, 200 OK after  +OK on the 183 (unless ignore_early_media=true,
        the answer delay                                                    then +OK on the 200)
200     180 Ringing, 200 OK after the answer delay, then the far end hangs  answered; NORMAL_CLEARING, recv_bye
        up (BYE) ``remote_hangup_delay`` seconds later (default 1 s)
other   180 Ringing, 200 OK after the answer delay (``answer_delay``,       answered; stays up until hung up
        default 0.1 s, 0 allowed)
======  ==================================================================  =========================================

Refusals (486/603/404/487) come ``answer_delay`` seconds after the INVITE.  Tests override
any number with ``Simulator.set_outcome(number, Outcome(...))``.  ``loopback/`` calls are not
covered by this rule: their B leg runs the dialplan, and the A leg follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMER_B = 32.0


@dataclass(frozen=True)
class Outcome:
    """The far end's script for one call.

    ``final``: SIP status of the final response (200 = answer, 4xx-6xx = refuse) or ``None``
    (never answers: rings until originate_timeout).  ``provisional``: 180 or 183 sent first
    (``None`` = only 100 Trying).  ``delay``: seconds from the INVITE to the final response
    (``None`` = the simulator's ``answer_delay``).  ``hangup_after``: seconds after the
    answer when the far end hangs up (``None`` = never).  ``local``: the failure is local
    (no response at all: unreachable 503, timer B 408)."""

    final: int | None = 200
    provisional: int | None = 180
    delay: float | None = None
    hangup_after: float | None = None
    local: bool = False
    hangup_cause: str = "NORMAL_CLEARING"

    @property
    def answers(self) -> bool:
        return self.final == 200


def outcome_for(number: str, *, remote_hangup_delay: float = 1.0) -> Outcome:
    digits = "".join(ch for ch in number if ch.isdigit())
    ending = digits[-3:] if len(digits) >= 3 else ""
    if ending in ("486", "603", "404"):
        return Outcome(final=int(ending), provisional=None)
    if ending == "480":
        return Outcome(final=None, provisional=180)
    if ending == "503":
        return Outcome(final=503, provisional=None, delay=0.0, local=True)
    if ending == "408":
        return Outcome(final=408, provisional=None, delay=TIMER_B, local=True)
    if ending == "487":
        return Outcome(final=487, provisional=180)
    if ending == "183":
        return Outcome(final=200, provisional=183)
    if ending == "200":
        return Outcome(final=200, provisional=180, hangup_after=remote_hangup_delay)
    return Outcome()
