"""One gateway process: the database, the call controller and the HTTP server.

``voicegw serve`` runs a ``Gateway`` until it is told to stop; ``voicegw demo`` and the
tests run one in-process.  Everything is a greenlet on one gevent hub.

This is the one place that wires the process: what the controller tells about each call
(its listeners, the hooks inside each batch's transaction, the hooks on its log entries)
goes to the media sessions, the webhook outbox and dispatcher, the public API's playback
scripts, the wallet, the per-day call counts and the campaign dialer, all connected here.
Building the HTTP app (``gateway.api.create_app``) changes nothing else.
"""

from __future__ import annotations

import logging
import socket

from gevent.pywsgi import WSGIServer

from gateway.api import create_app
from gateway.billing.ledger import billing_hook
from gateway.calls.controller import CallController
from gateway.calls.day_counts import rollup_hook
from gateway.calls.media_session import MediaSessions
from gateway.calls.scripts import Script, ScriptRunner
from gateway.campaigns import runs
from gateway.metrics import GatewayMetrics
from gateway.config import NodeConfig, Settings
from gateway.dialer.dialer import Dialer
from gateway.dialer.results import results_hook
from gateway.domain import Surface
from gateway.greenlets import GreenletOwner
from gateway.media.bridge import MediaBridge
from gateway.models import Call, connect, database, migrate, stored_secrets
from gateway.models.db import close_database
from gateway.otp import service as otp_service
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.outbox import outbox_hook, outbox_log_hook

logger = logging.getLogger(__name__)


def public_script(controller, call_uuid: str) -> Script | None:
    """The playback script of an answered call of the public calling API (None for other
    calls): its run's (audio blast, press-1) or its verification code's."""
    call = Call.get_or_none(Call.uuid == call_uuid)
    if call is None or call.surface != Surface.PUBLIC:
        return None
    if call.campaign_id is not None:
        return runs.script_for(controller, call)
    return otp_service.script_for(controller, call)


class ApiServer(WSGIServer):
    """gevent's WSGI server with Nagle's algorithm off on every connection.  A keep-alive
    client's next request otherwise waits for the delayed ACK of the last response's
    tail: a 40 ms floor under every request, 22 requests a second per connection."""

    def handle(self, sock, address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


class Gateway:
    """``probe_playback``: once each node is first connected, play a tone through its
    playback form and log whether a caller would hear it (``gateway.playback_probe``);
    ``voicegw serve`` does, tests and the demo choose."""

    def __init__(self, settings: Settings, originate_timeout: int = 60, probe_playback: bool = False,
                 dialer_options: dict | None = None) -> None:
        self.settings = settings
        self.probe_playback = probe_playback
        self._probes = GreenletOwner("playback probes")
        # URL knowledge documents fetched for the voice-agent admin surface.
        self.knowledge = GreenletOwner("knowledge fetches")
        self.db = connect(settings.database_url)
        self.controller = CallController(settings.freeswitch_nodes, originate_timeout=originate_timeout,
                                         admission_wait=settings.admission_wait)
        media = settings.media
        self.bridge: MediaBridge | None = None
        self.media: MediaSessions | None = None
        if media.enabled:
            self.bridge = MediaBridge(media.listen.host, media.listen.port, media.public_url)
            self.media = MediaSessions(self.controller, self.bridge, media)
            # POST /api/calls/redirect on an answered call (gateway.api.control.calls)
            self.redirect_media = lambda call, target: self.media.redirect(call.uuid, target)
        # Webhooks: written in the transaction of the status change that causes them,
        # delivered by the dispatcher, which a commit wakes up.
        self.controller.transaction_hooks.append(outbox_hook)
        self.controller.log_hooks.append(outbox_log_hook)  # call.answered: media session established
        self.dispatcher = Dispatcher(self.db, concurrency=5)
        self.controller.listeners.append(lambda call_uuid, transition: self.dispatcher.wake())
        # The public calling API's calls play scripts; a verification call's code is
        # forgotten when it ends. Final statuses charge the wallet and keep the per-day
        # call counts, inside the transaction that writes them.
        scripts = ScriptRunner(self.controller, lambda call_uuid: public_script(self.controller, call_uuid), database)
        self.controller.listeners.append(scripts.on_transition)
        self.controller.listeners.append(otp_service.SPEECH.on_transition)
        self.controller.public_scripts = scripts
        self.controller.transaction_hooks.append(billing_hook)
        self.controller.transaction_hooks.append(rollup_hook)
        # Campaigns: the dialer places their calls; a call's final status settles its
        # contact's attempt in the same transaction, whichever process placed it.
        # ``dialer_options``: ``Dialer``'s clock, interval and lease (tests set them).
        self.dialer = Dialer(self.controller, **(dialer_options or {}))
        self.controller.transaction_hooks.append(results_hook(self.dialer.clock))
        self.metrics = GatewayMetrics(self.controller, self.bridge)
        self.metrics.install()
        self.dispatcher.attempt_hooks.append(self.metrics.webhook_attempt)
        self.app = create_app(self)
        self.http: WSGIServer | None = None

    def start(self, http: bool = True) -> None:
        migrate(self.db)
        # Before anything reads a stored secret: a missing or wrong key stops the start here,
        # with one clear line, not in the middle of a call or a webhook delivery.
        keys = stored_secrets.check(self.db)
        logger.info("stored secrets: encrypted with key %s (%s)", keys.first_id, keys.source)
        if self.bridge is not None:
            self.bridge.start()
            for node in self.controller.nodes:
                logger.info("FreeSWITCH %s: bot audio in the %s form (GATEWAY_MEDIA_PLAYBACK)", node,
                            self.settings.media.playback_for(node))
        self.controller.start()
        if self.bridge is not None and self.probe_playback:
            for config in self.settings.freeswitch_nodes:
                self._probes.spawn(self._probe_node, config)
        self.dispatcher.start()
        self.dialer.start()
        if http:
            self.http = ApiServer(tuple(self.settings.http), self.app, log=None)
            self.http.start()
            logger.info("HTTP API on http://%s:%s", *self.settings.http)

    def _probe_node(self, config: NodeConfig) -> None:
        from gateway import playback_probe

        node = self.controller.nodes[config.name]
        node.wait_connected()
        form = self.settings.media.playback_for(config.name)
        result = playback_probe.probe(config.host, config.port, config.password, self.bridge, form,
                                      self.settings.media_dir)
        if result.ok:
            logger.info("FreeSWITCH %s: a bot is heard: %s", config.name, result.summary())
        else:
            logger.warning("FreeSWITCH %s: callers would not hear bots well: %s", config.name, result.summary())

    def stop(self) -> None:
        """Stop taking work, let the work in flight end, and only then close the database.

        The order matters: a greenlet that still holds a pooled PostgreSQL connection when
        the pool is closed blocks the whole process on that connection's lock.  So the
        HTTP server stops accepting first, then the media sessions and playback scripts
        end theirs (each owner waits for its greenlets, then kills what is left), then the
        controller's worker writes what it has, then the dispatcher finishes its attempts.
        """
        if self.http is not None:
            self.http.stop(timeout=2)
            self.http = None
        self._probes.stop(0)
        self.knowledge.stop(1.0)
        if self.media is not None:
            self.media.stop()
            self.bridge.stop()
        self.dialer.stop()
        self.controller.public_scripts.stop()
        self.controller.stop()
        self.dispatcher.stop()
        close_database(self.db)
