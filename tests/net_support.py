"""Helpers of the outbound-policy tests: every spelling of loopback, and a resolver seam."""
from __future__ import annotations

import socket

# Every way of writing a loopback (or "this host") address that the C library, and so a
# connection made from the URL, reads as one.
LOOPBACK_HOSTS = [
    "127.0.0.1", "127.1", "127.0.1", "0x7f000001", "0x7f.1", "2130706433", "0177.0.0.1", "017700000001",
    "127.0.0.2", "[::1]", "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:7f00:1]", "0.0.0.0", "0", "localhost",
]


def fake_resolver(answers: dict[str, list[str]]):
    """A resolver for ``net_policy``: ``{name: [ip, …]}``; any other name does not resolve."""
    def resolve(host, port):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, (ip, port)) for ip in answers[host]]
    return resolve
