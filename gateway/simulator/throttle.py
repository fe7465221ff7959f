"""The switch's two session limits: sessions per second and concurrent sessions.

What FreeSWITCH 1.10.12 does (read in its source, tag v1.10.12):

* ``switch_core_session_request_uuid`` (src/switch_core_session.c) runs for every new
  session (an outbound leg, an inbound SIP call, each of a loopback call's two legs)
  unless the originate passed ``SOF_NO_LIMITS``.  It takes one from the per-second
  budget first (``sps = --runtime.sps``) and refuses when what is left is ``<= 0``
  (``[CRIT] Throttle Error!``), then refuses when ``session_count + 1 > max-sessions``
  (``[CRIT] Over Session Limit!``).  The budget is taken even by a request that is then
  refused, so at most ``sessions-per-second - 1`` sessions start in one second.
* The timer thread (src/switch_time.c ``SWITCH_MODULE_RUNTIME_FUNCTION(softtimer)``)
  refills the budget once a second: ``sps_last = sps_total - sps`` (refused requests
  included), the peaks follow it (the five-minute ones restart every 300 ticks), then
  ``sps = sps_total``.  A refill is a fixed tick, not a sliding window.
* Defaults (src/switch_core.c ``switch_core_init``, src/switch_core_session.c
  ``switch_core_session_init``): 30 sessions per second and 1000 sessions, as in the
  gateway's ``freeswitch-conf/autoload_configs/switch.conf.xml``; ``fsctl sps <n>`` and
  ``fsctl max_sessions <n>`` change them on a running switch.

A refused request creates no channel and fires no event; what the caller sees is the
endpoint's own failure (``DESTINATION_OUT_OF_ORDER`` from mod_sofia and mod_loopback, a
``503 Maximum Calls In Progress`` answer to an inbound INVITE).
"""

from __future__ import annotations

DEFAULT_SESSIONS_PER_SECOND = 30
DEFAULT_MAX_SESSIONS = 1000
FIVE_MINUTES_OF_TICKS = 300


class Throttle:
    """``runtime.sps`` and friends of one running switch; ``tick()`` is the timer thread."""

    def __init__(self, sessions_per_second: int = DEFAULT_SESSIONS_PER_SECOND,
                 max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        if sessions_per_second < 1 or max_sessions < 1:
            raise ValueError("sessions per second and max sessions must be at least 1")
        self.sessions_per_second = sessions_per_second  # runtime.sps_total
        self.max_sessions = max_sessions  # session_manager.session_limit
        self.remaining = sessions_per_second  # runtime.sps
        self.last = 0  # runtime.sps_last
        self.peak = 0  # runtime.sps_peak
        self.peak_fivemin = 0  # runtime.sps_peak_fivemin
        self.ticks = 0  # refills so far

    def request(self, session_count: int) -> bool:
        """May one more session start now, with ``session_count`` sessions up?"""
        self.remaining -= 1
        if self.remaining <= 0:
            return False
        return session_count + 1 <= self.max_sessions

    def tick(self) -> None:
        """The once-a-second refill."""
        self.last = self.sessions_per_second - self.remaining
        if self.ticks % FIVE_MINUTES_OF_TICKS == 0:
            self.peak_fivemin = 0
        self.ticks += 1
        self.peak_fivemin = max(self.peak_fivemin, self.last)
        self.peak = max(self.peak, self.last)
        self.remaining = self.sessions_per_second

    @property
    def remaining_unsigned(self) -> int:
        """``runtime.sps`` as HEARTBEAT prints it (``%u``: a negative budget wraps)."""
        return self.remaining & 0xFFFFFFFF
