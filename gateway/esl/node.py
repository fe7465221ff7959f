"""A FreeSWITCH node: one ``ESLLink`` kept alive with reconnects and re-subscription.

On every (re)connect the node first reads what the switch is configured with (the
global variables it is asked for and its session limits), then subscribes; it counts
as connected only once both are known, so nothing can be originated on a link whose
carrier trunk name or limits are still those of the previous link, or unknown.
"""

from __future__ import annotations

import logging
import random
from typing import Callable

import gevent
from gevent.event import Event as Flag

from gateway.esl import commands
from gateway.esl.connection import CommandFailed, ESLLink, LinkDown
from gateway.esl.limits import FREESWITCH_DEFAULTS, SwitchLimits, version_from_status
from gateway.esl.protocol import Event

logger = logging.getLogger(__name__)

# Narrow on purpose: FreeSWITCH drops a listener that falls 500 events behind, and every
# event we do not need is work on the reader.  CUSTOM subclasses must come last, since
# every word after CUSTOM is read as a subclass name.
CALL_EVENTS = (
    "CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_PARK CHANNEL_BRIDGE "
    "CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB DTMF "
    "PLAYBACK_START PLAYBACK_STOP RECORD_START RECORD_STOP "
    "CUSTOM mod_audio_stream::connect mod_audio_stream::disconnect mod_audio_stream::error "
    "mod_audio_stream::json mod_audio_stream::play"
)


class Node:
    """Owns the connection to one FreeSWITCH node for the life of the process.

    ``globals_wanted`` names the FreeSWITCH global variables read into ``globals`` on
    every connect (unset ones are left out); ``limits`` holds the session limits read then.

    ``on_event(node, event)`` runs on the reader greenlet and must only enqueue.
    ``on_connected(node)`` is called after each (re)connect *before* the subscription is
    sent, and must only enqueue too: whatever it queues is then ahead of every event of
    the new link, so reconciliation can run before those events are applied.
    """

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        password: str,
        on_event: Callable[["Node", Event], None],
        on_connected: Callable[["Node"], None] | None = None,
        events: str = CALL_EVENTS,
        command_timeout: float = 5.0,
        max_backoff: float = 5.0,
        globals_wanted: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.password = password
        self.on_event = on_event
        self.on_connected = on_connected
        self.events = events
        self.command_timeout = command_timeout
        self.max_backoff = max_backoff
        self.link: ESLLink | None = None
        self.globals_wanted = globals_wanted
        self.globals: dict[str, str] = {}  # FreeSWITCH global variables read on connect
        self.limits = SwitchLimits(*FREESWITCH_DEFAULTS)  # replaced by the switch's own on connect
        self.version: str | None = None  # FreeSWITCH's, from the same status reply
        self.connected = Flag()
        self.generation = 0  # bumps on each successful connect
        self.last_error: str | None = None
        self._closed = Flag()
        self._running = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._running = True
        self._greenlet = gevent.spawn(self._supervise)

    def stop(self) -> None:
        self._running = False
        if self.link is not None:
            self.link.close("node stopped")
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        self.connected.clear()

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self.connected.wait(timeout)

    def _supervise(self) -> None:
        backoff = 0.1
        while self._running:
            self._closed.clear()
            link = ESLLink(
                self.host, self.port, self.password,
                on_event=self._deliver, on_close=self._link_closed, timeout=self.command_timeout,
            )
            try:
                link.connect()
                self._learn(link)
                self.link = link
                self.generation += 1
                if self.on_connected is not None:
                    self.on_connected(self)
                link.command(commands.subscribe(self.events))
            except Exception as exc:  # refused, timed out, bad password, …: all mean retry later
                self.last_error = str(exc) or type(exc).__name__
                logger.warning("FreeSWITCH %s unreachable: %s (retry in %.1fs)", self.name, self.last_error, backoff)
                link.close("connect failed")
                gevent.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.1
            self.last_error = None
            self.connected.set()
            logger.info("FreeSWITCH %s %s: version %s, %s", self.name,
                        "connected" if self.generation == 1 else f"reconnected (link {self.generation})",
                        self.version or "unknown", self.limits)
            self._closed.wait()
            self.connected.clear()
            if self._running:
                logger.warning("FreeSWITCH %s link lost: %s", self.name, self.last_error)

    def _learn(self, link: ESLLink) -> None:
        """Read the wanted globals and the session limits over a new link."""
        found = {}
        for name in self.globals_wanted:
            try:
                value = link.api(commands.global_getvar(name)).strip()
            except CommandFailed:  # unset: FreeSWITCH turns the empty answer into "-ERR no reply"
                continue
            if value:
                found[name] = value
        status = link.api(commands.STATUS)
        try:
            limits = SwitchLimits.from_status(status)
        except ValueError:
            limits = SwitchLimits(*FREESWITCH_DEFAULTS)
            logger.warning("FreeSWITCH %s: session limits not found in its status reply; assuming %s",
                           self.name, limits)
        self.globals, self.limits, self.version = found, limits, version_from_status(status)

    def _deliver(self, event: Event) -> None:
        self.on_event(self, event)

    def _link_closed(self, reason: str) -> None:
        self.last_error = reason
        self.connected.clear()
        self._closed.set()

    # -- commands ---------------------------------------------------------------------
    def _live_link(self) -> ESLLink:
        link = self.link
        if link is None or not link.connected:
            raise LinkDown(f"FreeSWITCH {self.name} is not connected")
        return link

    def api(self, command: str, timeout: float | None = None) -> str:
        return self._live_link().api(command, timeout)

    def bgapi(self, command: str, job_uuid: str, timeout: float | None = None) -> None:
        self._live_link().bgapi(command, job_uuid, timeout)

    def sendmsg(self, call_uuid: str, headers: dict[str, str], timeout: float | None = None) -> None:
        self._live_link().sendmsg(call_uuid, headers, timeout)
