"""Webhook URLs: which may be called, and HTTP connections that go only to checked addresses.

The policy itself (which addresses are refused, the operator's allowlist, resolving a
host) is ``gateway.net_policy``, shared with the bots' WebSocket URLs. Here: only
``http``/``https`` URLs are webhook URLs (:func:`check_url`, when one is configured), and
:func:`guarded_session` is a ``requests`` session whose every connection is opened by
the policy to an address it has just checked (the check that counts: no DNS rebinding
between check and connect). TLS still verifies the certificate against the URL's host
name.
"""
from __future__ import annotations

import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from gateway import net_policy
from gateway.net_policy import UrlRefused, policy

__all__ = ["SCHEMES", "UrlRefused", "check_url", "guarded_session", "policy", "split_url"]

SCHEMES = ("http", "https")
WHAT = "webhook URL"


def split_url(url: str) -> net_policy.Endpoint:
    """``(scheme, host, port)`` of an http(s) URL; raise :class:`UrlRefused` otherwise."""
    return net_policy.split_url(url, SCHEMES, WHAT)


def check_url(url: str, *, resolve_host: bool = True) -> str:
    """``url`` stripped if the gateway may call it; raise :class:`UrlRefused` otherwise.

    With ``resolve_host`` (the default) the host is resolved and every address checked;
    a name that does not resolve is refused too. Without it only the syntax and a
    literal IP host are checked (no DNS: for paths that must not block).
    """
    return net_policy.check_url(url, SCHEMES, WHAT, resolve_host=resolve_host, require_dns=True)


# -- connections that connect only to checked addresses --------------------------------


class _GuardedConnectionMixin:
    """Resolve, check, and connect to the checked address in one step."""

    def _new_conn(self):  # urllib3's hook that opens the socket
        def dial(address):
            return create_connection(address, self.timeout, source_address=self.source_address,
                                     socket_options=self.socket_options)
        try:
            return policy.connect(self.host, self.port, dial)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except socket.timeout as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go only to addresses the policy allows."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def guarded_session(pool_maxsize: int = 10) -> requests.Session:
    """A ``requests.Session`` for customer URLs: guarded connections, no proxies from
    the environment (they would bypass the address check), no redirects followed by
    default (pass ``allow_redirects=False``; each hop would be checked anyway)."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(pool_connections=pool_maxsize, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
