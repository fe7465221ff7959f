"""One gateway process: the database, the call controller and the HTTP server.

``voicegw serve`` runs a ``Gateway`` until it is told to stop; ``voicegw demo`` and the
tests run one in-process.  Everything is a greenlet on one gevent hub.
"""

from __future__ import annotations

import logging

from gevent.pywsgi import WSGIServer

from gateway.api import create_app
from gateway.calls.controller import CallController
from gateway.calls.media_session import MediaSessions
from gateway.config import Settings
from gateway.media.bridge import MediaBridge
from gateway.models import connect, migrate
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.outbox import outbox_hook

logger = logging.getLogger(__name__)


class Gateway:
    def __init__(self, settings: Settings, originate_timeout: int = 60) -> None:
        self.settings = settings
        self.db = connect(settings.database_url)
        self.controller = CallController(settings.freeswitch_nodes, originate_timeout=originate_timeout)
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
        self.dispatcher = Dispatcher(self.db, concurrency=5)
        self.controller.listeners.append(lambda call_uuid, transition: self.dispatcher.wake())
        self.app = create_app(self)
        self.http: WSGIServer | None = None

    def start(self, http: bool = True) -> None:
        migrate(self.db)
        if self.bridge is not None:
            self.bridge.start()
        self.controller.start()
        self.dispatcher.start()
        if http:
            self.http = WSGIServer(tuple(self.settings.http), self.app, log=None)
            self.http.start()
            logger.info("HTTP API on http://%s:%s", *self.settings.http)

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop(timeout=2)
            self.http = None
        if self.media is not None:
            self.media.stop()
            self.bridge.stop()
        self.controller.stop()
        self.dispatcher.stop()
        self.db.close()
