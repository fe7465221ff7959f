"""One gateway process: the database, the call controller and the HTTP server.

``voicegw serve`` runs a ``Gateway`` until it is told to stop; ``voicegw demo`` and the
tests run one in-process.  Everything is a greenlet on one gevent hub.
"""

from __future__ import annotations

import logging
import socket

from gevent.pywsgi import WSGIServer

from gateway.api import create_app
from gateway.calls.controller import CallController
from gateway.calls.media_session import MediaSessions
from gateway.config import Settings
from gateway.media.bridge import MediaBridge
from gateway.models import connect, migrate, stored_secrets
from gateway.models.db import close_database
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.outbox import outbox_hook, outbox_log_hook

logger = logging.getLogger(__name__)


class ApiServer(WSGIServer):
    """gevent's WSGI server with Nagle's algorithm off on every connection.  A keep-alive
    client's next request otherwise waits for the delayed ACK of the last response's
    tail: a 40 ms floor under every request, 22 requests a second per connection."""

    def handle(self, sock, address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


class Gateway:
    def __init__(self, settings: Settings, originate_timeout: int = 60) -> None:
        self.settings = settings
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
        self.dispatcher.start()
        if http:
            self.http = ApiServer(tuple(self.settings.http), self.app, log=None)
            self.http.start()
            logger.info("HTTP API on http://%s:%s", *self.settings.http)

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
        if self.media is not None:
            self.media.stop()
            self.bridge.stop()
        scripts = getattr(self.controller, "public_scripts", None)
        if scripts is not None:
            scripts.stop()
        self.controller.stop()
        self.dispatcher.stop()
        close_database(self.db)
