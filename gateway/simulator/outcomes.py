"""What the far end does with an outbound call, chosen from the dialled number.

The rule looks at the **last three digits** of the dialled number: ``<number>`` in
``sofia/gateway/<gw>/<number>``, ``<user>`` in ``sofia/<profile>/<user>@<host>``, ``<ext>`` in
``user/<ext>`` (non-digits are ignored; fewer than three digits never match a code).

| ends in | the far end | the call (Hangup-Cause, q850; originate reply) |
|---------|-------------|-----------------------------------------------|
| `486` | 100 Trying, then 486 Busy Here | `USER_BUSY` (17), sip_term_status 486, recv_refuse; `-ERR USER_BUSY` |
| `603` | 100 Trying, then 603 Decline | `CALL_REJECTED` (21), 603; `-ERR CALL_REJECTED` |
| `404` | 100 Trying, then 404 Not Found | `UNALLOCATED_NUMBER` (1), 404; `-ERR UNALLOCATED_NUMBER` |
| `487` | 180 Ringing, then 487 Request Terminated | `ORIGINATOR_CANCEL` (q850 16), 487; `-ERR ORIGINATOR_CANCEL` |
| `480` | 180 Ringing, never answers; FreeSWITCH sends CANCEL at the originate timeout (`originate_timeout` variable, else the API's timeout argument, else 60 s) | `NO_ANSWER` (19), send_cancel; `-ERR NO_ANSWER` |
| `503` | unreachable: no response at all, the INVITE fails at once (as on ICMP port unreachable) | `NORMAL_TEMPORARY_FAILURE` (41), local 503; `-ERR NORMAL_TEMPORARY_FAILURE` |
| `408` | no response at all: SIP timer B fires after 32 s, unless the originate timeout is shorter | `RECOVERY_ON_TIMER_EXPIRE` (102), local 408 (or `NO_ANSWER` when the timeout comes first) |
| `183` | 183 Session Progress with SDP (early media) at once, 200 OK after the answer delay | originate returns `+OK <uuid>` on the 183, or on the 200 with `ignore_early_media=true` |
| `200` | 180 Ringing, 200 OK after the answer delay, then hangs up (BYE) `remote_hangup_delay` seconds later (default 1 s) | answered, then `NORMAL_CLEARING` with recv_bye |
| anything else | 180 Ringing, then 200 OK after the answer delay (`answer_delay`, default 0.1 s, 0 allowed) | answered; up until someone hangs up |

Refusals (486, 603, 404, 487) come ``answer_delay`` after the INVITE.  A test overrides any
number with ``Simulator.set_outcome(number, Outcome(...))``.  ``loopback/`` calls do not use
this rule: their B leg runs the dialplan and the A leg follows it; ``error/<cause>`` fails
at once with that cause and no channel; an unknown ``sofia/gateway/<gw>`` fails with
``INVALID_GATEWAY`` and no channel.
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
    (no response at all: unreachable 503, timer B 408).  ``cause``: the hangup cause of a
    refusal or local failure, instead of the one mod_sofia derives from ``final``: for a
    test that needs a failure no SIP status names (``GATEWAY_DOWN``, ``USER_NOT_REGISTERED``)
    or ``NO_ANSWER`` without waiting for the originate timeout."""

    final: int | None = 200
    provisional: int | None = 180
    delay: float | None = None
    hangup_after: float | None = None
    local: bool = False
    hangup_cause: str = "NORMAL_CLEARING"
    cause: str | None = None

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
