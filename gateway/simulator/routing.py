"""Which applications a channel runs when it enters the dialplan.

If ``gateway/simulator/dialplan.py`` (an IO-free router over the shipped ``dialplan/`` XML)
is importable and a dialplan directory is configured, routing goes through it.  Otherwise a
built-in router stands in:

* ``Simulator.add_route(context, destination, [(app, arg), …])`` entries win;
* the ``public`` context first runs what FreeSWITCH's vanilla public context runs for every
  call (``set outside_call=true``, ``export RFC2822_DATE=…``; seen in sip_inbound_* and
  midcall_transfer_to_9196 captures);
* an unknown destination parks (a loopback B leg answers first, so the A leg is accepted).

``inline`` dialplans (``uuid_transfer <uuid> 'playback:/x.wav,park' inline``) are parsed
here: a comma list of ``app:arg`` (``m:<sep>:`` changes the separator).

An application's argument is expanded when the application runs (:meth:`Router.expand`),
as ``switch_core_session_exec`` does, unless the channel sets ``app_disable_expand_variables``.
"""

from __future__ import annotations

import logging
import time

from gateway.esl.values import switch_true

from .dialplan import PROFILE_FIELDS, expand_variables

logger = logging.getLogger(__name__)

App = tuple[str, str]


def parse_inline(spec: str) -> list[App]:
    sep = ","
    if spec.startswith("m:") and len(spec) > 3 and spec[3] == ":":
        sep, spec = spec[2], spec[4:]
    apps = []
    for item in spec.split(sep):
        item = item.strip()
        if not item:
            continue
        name, _, arg = item.partition(":")
        if " " in name and not arg:
            name, _, arg = item.partition(" ")
        apps.append((name.strip(), arg))
    return apps


def _rfc2822_now() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())


class Router:
    def __init__(self, sim, dialplan_dir: str | None = None) -> None:
        self.sim = sim
        self.routes: dict[tuple[str, str], list[App]] = {}
        self.dialplan = None
        if dialplan_dir:
            self.dialplan = _load_dialplan(dialplan_dir)

    def add(self, context: str, destination: str, apps: list[App]) -> None:
        self.routes[(context, destination)] = list(apps)

    def route(self, ch, destination: str, dialplan: str = "XML", context: str = "default") -> list[App] | None:
        if (dialplan or "").lower() == "inline":
            return parse_inline(destination)
        if (context, destination) in self.routes:
            return self._prefix(context) + self.routes[(context, destination)]
        if self.dialplan is not None:
            found = self.dialplan(ch, destination, context)
            if found is not None:
                return found
        apps = self._prefix(context)
        if ch.endpoint == "loopback":
            apps.append(("answer", ""))
        apps.append(("park", ""))
        return apps

    def expand(self, ch, text: str) -> str:
        """An application's argument as the application receives it.

        ``switch_channel_expand_variables_check`` (1.10.12 ``switch_channel.c``, modelled by
        ``dialplan.expand_variables``): ``${name}`` and ``$${name}`` read the channel's
        variable, else the caller profile's field, else the global variable
        (``switch_channel_get_variable_dup``), so ``${esl_password}`` gives the ESL password;
        ``${api args}`` / ``${api(args)}`` gives ``<API Execute Permission Denied>``
        (``api-expansion=false``, as the shipped ``switch.conf.xml`` sets); ``\\$``, ``\\\\``
        and ``\\'`` are unescaped. ``app_disable_expand_variables`` true leaves it alone."""
        if switch_true(ch.variables.get("app_disable_expand_variables")):
            return text
        if self.dialplan is not None and hasattr(self.dialplan, "expand"):
            return self.dialplan.expand(ch, text)
        return expand_variables(text, lambda name: self._lookup(ch, name))

    def _lookup(self, ch, name: str) -> str | None:
        lower = name.lower()  # event headers are looked up without regard to case
        for key, value in ch.variables.items():
            if key.lower() == lower:
                return value
        if name in PROFILE_FIELDS:
            value = getattr(ch.profile, name, None)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return str(value)
        return self.sim.global_vars.get(name)

    @staticmethod
    def _prefix(context: str) -> list[App]:
        if context == "public":
            return [("set", "outside_call=true"), ("export", f"RFC2822_DATE={_rfc2822_now()}")]
        return []


def _load_dialplan(directory: str):
    from .dialplan import make_router

    return make_router(directory)
