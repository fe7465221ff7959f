"""A FreeSWITCH 1.10.12 stand-in speaking the real Event Socket protocol.

``Simulator(host="127.0.0.1", port=8021, password="ClueCon", gateways=("carrier",),
dialplan_dir=None, answer_delay=0.1, heartbeat_interval=20.0, sessions_per_second=30,
max_sessions=1000)``: ``start()`` / ``stop()`` /
``serve_forever()``, ``port``, ``channels`` (uuid -> ``Channel``), ``history``,
``set_outcome(number, Outcome(...))``, ``inject_inbound(...)``, ``far_end_hangup(...)``,
``press(...)``, ``wait_for(predicate, timeout)``.  The far-end rule is in ``outcomes``.
"""

from .channel import Channel
from .outcomes import Outcome, outcome_for
from .simulator import Simulator

__all__ = ["Channel", "Outcome", "Simulator", "outcome_for"]
