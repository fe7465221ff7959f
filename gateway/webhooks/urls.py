"""Which customer URLs the gateway may call (server-side request forgery guard).

A webhook URL is a customer's choice, and the gateway calls it from inside the
operator's network. So only ``http``/``https`` URLs are accepted, and every address
the host resolves to must be globally routable: loopback, private (RFC 1918, ULA),
link-local (incl. 169.254.169.254, the cloud metadata service), multicast, reserved,
unspecified, shared (100.64/10) and documentation ranges are refused, as are
IPv4-mapped IPv6 forms of them. A host that resolves to several addresses is refused
if any one of them is.

An operator who must reach an internal receiver lists its addresses in the allowlist:
``GATEWAY_WEBHOOK_ALLOWLIST=10.1.2.3,192.168.50.0/24`` (comma-separated IPs or CIDRs),
read once at import into :data:`policy`; tests change ``policy.allowlist`` (see
:meth:`UrlPolicy.allowing`).

The check runs twice: when a URL is configured (:func:`check_url`) and again at the
moment of every request (:func:`guarded_session`). The second one is what counts: the
connection is opened to exactly the address that passed the check, so a DNS answer
that changes between check and connect (DNS rebinding) cannot slip a private address
in. TLS still verifies the certificate against the URL's host name.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

ALLOWLIST_VAR = "GATEWAY_WEBHOOK_ALLOWLIST"
SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefused(ValueError):
    """The URL may not be called: bad scheme, no host, or a refused address."""


def parse_allowlist(text: str | None, source: str = ALLOWLIST_VAR) -> tuple[IPNetwork, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks; raise ``ValueError`` naming ``source``."""
    networks = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{source}: {item!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused (``"loopback"``, ``"private"``…), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_kind(ip.ipv4_mapped)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "non-global"  # shared address space (100.64/10), documentation ranges, …
    return None


@dataclass
class UrlPolicy:
    """Public addresses are allowed; others only when the allowlist contains them."""

    allowlist: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, environ=None) -> UrlPolicy:
        environ = os.environ if environ is None else environ
        return cls(parse_allowlist(environ.get(ALLOWLIST_VAR)))

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be called, or None if it may."""
        if any(ip in network for network in self.allowlist if network.version == ip.version):
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            mapped = ip.ipv4_mapped
            if any(mapped in network for network in self.allowlist if network.version == 4):
                return None
        kind = address_kind(ip)
        return f"a {kind} address" if kind else None

    @contextmanager
    def allowing(self, *cidrs: str):
        """Add ``cidrs`` to the allowlist for the duration of a ``with`` block (tests)."""
        saved = self.allowlist
        self.allowlist = saved + parse_allowlist(",".join(cidrs), "allowlist")
        try:
            yield self
        finally:
            self.allowlist = saved


#: The process's policy, from ``GATEWAY_WEBHOOK_ALLOWLIST``.
policy = UrlPolicy.from_env()


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL; raise :class:`UrlRefused` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("the webhook URL is empty")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRefused(f"webhook URL {url!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise UrlRefused(f"webhook URL {url!r} is not a valid URL; expected http(s)://host/…")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve(host: str, port: int, url_policy: UrlPolicy | None = None) -> list[tuple[int, tuple]]:
    """``[(family, sockaddr)]`` for ``host``, every one allowed by the policy.

    Raises ``socket.gaierror`` if the name does not resolve, :class:`UrlRefused` if any
    address it resolves to is refused.
    """
    url_policy = url_policy or policy
    host = host.strip("[]")
    results = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        why = url_policy.refusal(ip)
        if why is not None:
            raise UrlRefused(f"{host} resolves to {ip}, {why}; refused (see {ALLOWLIST_VAR})")
        if (family, sockaddr) not in results:
            results.append((family, sockaddr))
    if not results:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    return results


def check_url(url: str, *, resolve_host: bool = True, url_policy: UrlPolicy | None = None) -> str:
    """``url`` stripped if the gateway may call it; raise :class:`UrlRefused` otherwise.

    With ``resolve_host`` (the default) the host is resolved and every address checked;
    a name that does not resolve is refused too. Without it only the syntax and a
    literal IP host are checked (no DNS: for paths that must not block).
    """
    scheme, host, port = split_url(url)
    if resolve_host:
        try:
            resolve(host, port, url_policy)
        except socket.gaierror as exc:
            raise UrlRefused(f"webhook URL {url!r}: {host} does not resolve ({exc.strerror or exc})") from None
    else:
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            why = (url_policy or policy).refusal(ip)
            if why is not None:
                raise UrlRefused(f"webhook URL {url!r} points to {ip}, {why}; refused (see {ALLOWLIST_VAR})")
    return url.strip()


# -- connections that connect only to checked addresses --------------------------------


class _GuardedConnectionMixin:
    """Resolve, check, and connect to the checked address in one step."""

    def _new_conn(self):  # urllib3's hook that opens the socket
        try:
            addresses = resolve(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: Exception | None = None
        for _family, sockaddr in addresses:
            try:
                return create_connection(
                    (sockaddr[0], sockaddr[1]), self.timeout,
                    source_address=self.source_address, socket_options=self.socket_options,
                )
            except socket.timeout as exc:
                error = ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                error.__cause__ = exc
        raise error


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
