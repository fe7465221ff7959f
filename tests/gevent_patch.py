"""Loaded first (``-p tests.gevent_patch`` in setup.cfg), before pytest's entry-point plugins
import ``ssl`` and ``socket``: the tests run the gateway the way ``voicegw`` does, on a
monkey-patched gevent hub (cooperative sockets, one database connection per greenlet)."""

from gevent import monkey

monkey.patch_all()
