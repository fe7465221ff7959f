"""Monkey-patch the standard library for gevent: import this before anything else.

The gateway is one gevent process: sockets, ``ssl`` and ``threading.local`` (peewee's
one-connection-per-thread becomes one per greenlet) must be cooperative before any
module imports them.  ``voicegw`` imports this first; so does pytest
(``-p gateway._monkey`` in setup.cfg), ahead of plugins that import ``ssl``.
"""

from gevent import monkey

monkey.patch_all()
