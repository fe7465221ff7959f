"""Which addresses the gateway may connect to on a customer's behalf (server-side request
forgery guard), for every URL a customer chooses: webhook URLs (routing webhook, status
callbacks, subscriptions) and bot WebSocket URLs (a call's ``socket_url``, redirect's
``media_server``, a routing answer, account and number defaults, websocket agents).

The gateway connects to those URLs from inside the operator's network, so every address
a URL's host stands for must be globally routable: loopback, private (RFC 1918, ULA),
link-local (incl. 169.254.169.254, the cloud metadata service), multicast, reserved,
unspecified, shared (100.64/10) and documentation ranges are refused, as are their
IPv4-mapped IPv6 forms. A host that resolves to several addresses is refused if any one
of them is.

A host is judged by the address it stands for, never by its spelling: every numeric form
the C library accepts (``127.1``, ``0x7f000001``, ``2130706433``, ``0177.0.0.1``) is read
as that address, and any other host is resolved (``localhost``, a DNS name). Userinfo
(``ws://evil@127.0.0.1``) is not the host.

An operator who must reach an internal receiver or bot lists its addresses in
``GATEWAY_OUTBOUND_ALLOWLIST`` (comma-separated IPs or CIDRs; ``GATEWAY_WEBHOOK_ALLOWLIST``
is its former name); the process's :data:`policy` holds them (tests add to it with
:meth:`OutboundPolicy.allowing`).

The check runs twice:

* when a URL is given (:func:`check_url`: the API, the admin CLI): literal addresses, and
  the addresses a name resolves to. A name that does not resolve (yet) is accepted there
  unless the caller asks otherwise: the connection decides;
* when connecting (:meth:`OutboundPolicy.connect`): the host is resolved again, every
  address checked, and the socket is opened to one of exactly those addresses, so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot slip
  an internal address in.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, NamedTuple
from urllib.parse import urlsplit

import gevent

ALLOWLIST_VAR = "GATEWAY_OUTBOUND_ALLOWLIST"
ALLOWLIST_ALIAS = "GATEWAY_WEBHOOK_ALLOWLIST"
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: Seconds a URL's host may take to resolve when the URL is given (an API request waits).
GIVEN_RESOLVE_TIMEOUT = 2.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> [(family, sockaddr)]``, as ``socket.getaddrinfo`` answers.
Resolver = Callable[[str, int], list]

# What inet_aton may read as an IPv4 address: digits, hex digits with 0x, dots.
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+\Z")


class UrlRefused(ValueError):
    """The URL may not be called: bad syntax, or an address the policy refuses."""


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


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric host is, in any spelling the C resolver reads as one
    (``127.1``, ``0x7f.1``, ``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``);
    None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def system_resolver(host: str, port: int) -> list:
    """The system's answer for ``host`` (looked up at call time, so a patched
    ``socket.getaddrinfo`` is the one asked)."""
    return [(family, sockaddr) for family, _, _, _, sockaddr in
            socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)]


@dataclass
class OutboundPolicy:
    """Public addresses are allowed; others only when the allowlist contains them."""

    allowlist: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be connected to, or None if it may."""
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        for candidate in candidates:
            if any(candidate in network for network in self.allowlist if network.version == candidate.version):
                return None
        kind = address_kind(ip)
        return f"a {kind} address" if kind else None

    @contextmanager
    def allowing(self, *cidrs: str | IPNetwork):
        """Add ``cidrs`` (``"127.0.0.1"``, ``"10.0.0.0/8"`` or networks) to the allowlist
        for the duration of a ``with`` block: a command run in-process, a test."""
        saved = self.allowlist
        self.allowlist = saved + tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
        try:
            yield self
        finally:
            self.allowlist = saved

    def addresses(self, host: str, port: int) -> list[tuple[int, tuple]]:
        """``[(family, sockaddr)]`` that ``host`` stands for, every one allowed.

        Raises :class:`UrlRefused` if any of them is refused, ``socket.gaierror`` if a
        name does not resolve.
        """
        literal = literal_address(host)
        if literal is not None:
            why = self.refusal(literal)
            if why is not None:
                raise UrlRefused(f"{host} resolves to {literal}, {why}; refused")
            if literal.version == 4:
                return [(socket.AF_INET, (str(literal), port))]
            return [(socket.AF_INET6, (str(literal), port, 0, 0))]
        results = []
        for family, sockaddr in self.resolver(host, port):
            ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            why = self.refusal(ip)
            if why is not None:
                raise UrlRefused(f"{host} resolves to {ip}, {why}; refused")
            if (family, sockaddr) not in results:
                results.append((family, sockaddr))
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
        return results

    def connect(self, host: str, port: int, dial: Callable[[tuple], socket.socket]) -> socket.socket:
        """Resolve ``host``, check every address, and return ``dial((ip, port))`` for the
        first checked address that answers; raise what :meth:`addresses` raises, or the
        last dial's ``OSError``."""
        error: OSError | None = None
        for _family, sockaddr in self.addresses(host, port):
            try:
                return dial((sockaddr[0], sockaddr[1]))
            except OSError as exc:
                error = exc
        raise error


#: The process's policy. ``GATEWAY_OUTBOUND_ALLOWLIST`` reaches it through the settings
#: (``gateway.config``): a process applies them with :func:`configure` when it starts.
policy = OutboundPolicy()


def configure(allowlist: tuple[IPNetwork, ...]) -> None:
    """Make ``allowlist`` (the settings' ``outbound_allowlist``) the process's allowlist."""
    policy.allowlist = tuple(allowlist)


class Endpoint(NamedTuple):
    scheme: str
    host: str
    port: int


def split_url(url: str, schemes: tuple[str, ...], what: str) -> Endpoint:
    """Scheme, host and port of ``url``; raise :class:`UrlRefused` unless it is an
    absolute URL with one of ``schemes`` and a host."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused(f"{what} is empty")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused(f"{what} {url!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes or not parts.hostname:
        expected = " or ".join(f"{s}://host/…" for s in schemes)
        raise UrlRefused(f"{what} {url!r} is not a valid URL; expected {expected}")
    return Endpoint(scheme, parts.hostname, port or DEFAULT_PORTS[scheme])


def check_url(url: str, schemes: tuple[str, ...], what: str, *, resolve_host: bool = True,
              require_dns: bool = False, url_policy: OutboundPolicy | None = None) -> str:
    """``url`` stripped if the gateway may connect to it; raise :class:`UrlRefused`.

    A literal address is always judged. With ``resolve_host`` a name is resolved (for at
    most :data:`GIVEN_RESOLVE_TIMEOUT` seconds) and every address judged; a name that does
    not resolve is refused only with ``require_dns``. Without ``resolve_host`` no DNS is
    asked (for paths that must not wait; the connection checks again anyway).
    """
    url_policy = url_policy or policy
    endpoint = split_url(url, schemes, what)
    url = url.strip()
    if not resolve_host and literal_address(endpoint.host) is None:
        return url
    unresolved = socket.gaierror(socket.EAI_AGAIN, f"no answer within {GIVEN_RESOLVE_TIMEOUT:g}s")
    try:
        with gevent.Timeout(GIVEN_RESOLVE_TIMEOUT, unresolved):
            url_policy.addresses(endpoint.host, endpoint.port)
    except UrlRefused as exc:
        raise UrlRefused(f"{what} {url!r}: {exc}") from None
    except socket.gaierror as exc:
        if require_dns:
            raise UrlRefused(f"{what} {url!r}: {endpoint.host} does not resolve ({exc.strerror or exc})") from None
    return url
