"""A customer's bot WebSocket, opened only to an address the outbound policy allows.

A bot URL is the customer's choice, and the gateway connects to it from inside the
operator's network (``gateway.net_policy``). So the socket is not opened by
websocket-client from the URL: the policy resolves the host, checks every address and
connects to a checked one; TLS (``wss://``) is then set up on that socket against the
URL's host name (SNI and certificate check as usual), and websocket-client only runs the
upgrade on it. It is never let to follow a redirect (which would connect again, unchecked)
or to use a proxy from the environment (which would bypass the check).

What a failure tells the call's log is deliberately coarse: the address is not allowed,
the name does not resolve, or the connection failed. Refused, reset, timed out, TLS and
upgrade failures all read the same, and nothing the far end sent is repeated, so that a
bot URL cannot be used to map which ports answer where. The precise cause goes to the
gateway's own log, for the operator.
"""

from __future__ import annotations

import logging
import socket
import ssl

import websocket

from gateway import net_policy
from gateway.media.connectors.base import BotUnavailable, redact

logger = logging.getLogger(__name__)

SCHEMES = ("ws", "wss")
NOT_ALLOWED = "bot unreachable: address not allowed"
NO_ADDRESS = "bot unreachable: host name does not resolve"
NO_CONNECTION = "bot unreachable: connection failed"
SWITCHING_PROTOCOLS = 101


def open_websocket(url: str, *, headers: list[str], connect_timeout: float,
                   policy: net_policy.OutboundPolicy) -> websocket.WebSocket:
    """An upgraded WebSocket to ``url``; raise ``BotUnavailable`` with a coarse reason."""
    try:
        endpoint = net_policy.split_url(url, SCHEMES, "bot URL")
        sock = policy.connect(endpoint.host, endpoint.port,
                              lambda address: socket.create_connection(address, connect_timeout))
    except net_policy.UrlRefused as exc:
        logger.info("bot %s refused: %s", redact(url), exc)
        raise BotUnavailable(NOT_ALLOWED) from None
    except socket.gaierror as exc:
        logger.info("bot %s: %s", redact(url), exc)
        raise BotUnavailable(NO_ADDRESS) from None
    except OSError as exc:
        logger.info("bot %s unreachable: %s", redact(url), exc)
        raise BotUnavailable(NO_CONNECTION) from None
    try:
        sock.settimeout(connect_timeout)
        if endpoint.scheme == "wss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=endpoint.host)
        ws = websocket.create_connection(url, timeout=connect_timeout, header=headers, socket=sock,
                                         redirect_limit=0, enable_multithread=True, skip_utf8_validation=True)
    except (OSError, websocket.WebSocketException) as exc:  # ssl.SSLError is an OSError
        sock.close()
        logger.info("bot %s: no WebSocket: %s", redact(url), str(exc)[:200])
        raise BotUnavailable(NO_CONNECTION) from None
    if ws.getstatus() != SWITCHING_PROTOCOLS:  # a redirect, which is not followed
        ws.shutdown()
        logger.info("bot %s: upgrade answered HTTP %s", redact(url), ws.getstatus())
        raise BotUnavailable(NO_CONNECTION)
    return ws
