"""One gateway process: the database, the call controller and the HTTP server.

``voicegw serve`` runs a ``Gateway`` until it is told to stop; ``voicegw demo`` and the
tests run one in-process.  Everything is a greenlet on one gevent hub.
"""

from __future__ import annotations

import logging

from gevent.pywsgi import WSGIServer

from gateway.api import create_app
from gateway.calls.controller import CallController
from gateway.config import Settings
from gateway.models import connect, migrate

logger = logging.getLogger(__name__)


class Gateway:
    def __init__(self, settings: Settings, originate_timeout: int = 60) -> None:
        self.settings = settings
        self.db = connect(settings.database_url)
        self.controller = CallController(settings.freeswitch_nodes, originate_timeout=originate_timeout)
        self.app = create_app(self)
        self.http: WSGIServer | None = None

    def start(self, http: bool = True) -> None:
        migrate(self.db)
        self.controller.start()
        if http:
            self.http = WSGIServer(tuple(self.settings.http), self.app, log=None)
            self.http.start()
            logger.info("HTTP API on http://%s:%s", *self.settings.http)

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop(timeout=2)
            self.http = None
        self.controller.stop()
        self.db.close()
