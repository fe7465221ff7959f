"""The outbound-address policy (``gateway.net_policy``): which addresses are refused, every
spelling of them, the allowlist and its setting, the resolver, and connecting only to a
checked address. No database; sockets on 127.0.0.1 only."""
import ipaddress
import socket

import pytest
from gevent.server import StreamServer

from gateway import net_policy
from gateway.config import Settings
from gateway.net_policy import OutboundPolicy, UrlRefused
from net_support import LOOPBACK_HOSTS, fake_resolver

@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"), ("fc00::1", "private"), ("100.64.0.1", "non-global"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
])
def test_refused_addresses(address, kind):
    ip = ipaddress.ip_address(address)
    assert net_policy.address_kind(ip) == kind
    assert OutboundPolicy().refusal(ip) == f"a {kind} address"


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert OutboundPolicy().refusal(ipaddress.ip_address(address)) is None


def test_allowlist_admits_listed_ips_and_cidrs():
    policy = OutboundPolicy(net_policy.parse_allowlist("127.0.0.1, 10.0.0.0/8 ,::1"))
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.200.0.5")) is None
    assert policy.refusal(ipaddress.ip_address("::1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "a loopback address"
    assert policy.refusal(ipaddress.ip_address("192.168.0.1")) == "a private address"
    with policy.allowing("192.168.0.0/16"):
        assert policy.refusal(ipaddress.ip_address("192.168.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("192.168.0.1")) == "a private address"


def test_the_allowlist_is_one_setting_with_its_former_name_accepted(tmp_path):
    networks = (ipaddress.ip_network("192.168.50.0/24"), ipaddress.ip_network("10.0.0.7/32"))
    assert Settings.from_env({"GATEWAY_OUTBOUND_ALLOWLIST": "192.168.50.0/24, 10.0.0.7"}).outbound_allowlist == networks
    assert Settings.from_env({"GATEWAY_WEBHOOK_ALLOWLIST": "192.168.50.0/24,10.0.0.7"}).outbound_allowlist == networks
    both = {"GATEWAY_OUTBOUND_ALLOWLIST": "::1", "GATEWAY_WEBHOOK_ALLOWLIST": "10.0.0.1"}
    assert Settings.from_env(both).outbound_allowlist == (ipaddress.ip_network("::1"),)  # the new name wins
    assert Settings.from_env({}).outbound_allowlist == ()
    with pytest.raises(ValueError, match="GATEWAY_OUTBOUND_ALLOWLIST: 'nope' is not an IP address or CIDR block"):
        Settings.from_env({"GATEWAY_OUTBOUND_ALLOWLIST": "10.0.0.1,nope"})
    with pytest.raises(ValueError, match="GATEWAY_WEBHOOK_ALLOWLIST: '10.0.0.300' is not an IP address"):
        Settings.from_env({"GATEWAY_WEBHOOK_ALLOWLIST": "10.0.0.300"})
    config = tmp_path / "gateway.toml"
    config.write_text('gateway_outbound_allowlist = "10.1.2.0/24"\n')
    assert Settings.from_env({}, config).outbound_allowlist == (ipaddress.ip_network("10.1.2.0/24"),)


def test_configure_sets_the_process_allowlist():
    saved = net_policy.policy.allowlist
    try:
        net_policy.configure(Settings.from_env({"GATEWAY_OUTBOUND_ALLOWLIST": "10.9.0.0/16"}).outbound_allowlist)
        assert net_policy.policy.refusal(ipaddress.ip_address("10.9.1.1")) is None
    finally:
        net_policy.policy.allowlist = saved


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_every_spelling_of_loopback_is_refused(host):
    policy = OutboundPolicy()
    with pytest.raises(UrlRefused, match=r"resolves to (127\.0\.0\.[12]|::1|::ffff:7f00:1|0\.0\.0\.0), a "
                                         r"(loopback|unspecified) address; refused"):
        policy.addresses(host.strip("[]"), 80)


@pytest.mark.parametrize("host, address", [
    ("127.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"), ("::ffff:7f00:1", "::ffff:7f00:1"), ("0", "0.0.0.0"),
])
def test_numeric_shorthands_are_read_as_the_c_library_reads_them(host, address):
    assert net_policy.literal_address(host) == ipaddress.ip_address(address)
    assert ipaddress.ip_address(socket.getaddrinfo(host, 80, 0, socket.SOCK_STREAM)[0][4][0]) == \
        ipaddress.ip_address(address)
    assert net_policy.literal_address("deadbeef") is None  # a name, not hex
    assert net_policy.literal_address("bot.example.com") is None


def test_names_are_judged_by_every_address_they_resolve_to():
    policy = OutboundPolicy(resolver=fake_resolver({
        "public.test": ["93.184.215.14"], "mixed.test": ["93.184.215.14", "10.0.0.8"],
        "metadata.test": ["169.254.169.254"], "v6.test": ["fd00::1"]}))
    assert policy.addresses("public.test", 443) == [(socket.AF_INET, ("93.184.215.14", 443))]
    with pytest.raises(UrlRefused, match="mixed.test resolves to 10.0.0.8, a private address; refused"):
        policy.addresses("mixed.test", 443)
    with pytest.raises(UrlRefused, match="a link-local address"):
        policy.addresses("metadata.test", 80)
    with pytest.raises(UrlRefused, match="fd00::1, a private address"):
        policy.addresses("v6.test", 80)
    with pytest.raises(socket.gaierror):
        policy.addresses("nowhere.test", 80)


@pytest.mark.parametrize("url", [
    "ws://127.0.0.1/", "ws://127.1:9000/bot", "wss://0x7f000001/", "ws://2130706433/", "ws://[::1]:8080/",
    "ws://[::ffff:127.0.0.1]/", "ws://evil.example.com@127.0.0.1/", "ws://user:pw@127.0.0.1:9000/",
    "ws://127.0.0.1#@evil.example.com/", "ws://localhost:9000/", "ws://0.0.0.0/", "ws://10.1.2.3/",
    "ws://169.254.169.254/latest", "WS://127.0.0.1/",
])
def test_check_url_refuses_internal_hosts_however_written(url):
    with pytest.raises(UrlRefused, match="; refused"):
        net_policy.check_url(url, ("ws", "wss"), "socket_url")
    if "localhost" not in url:  # a literal needs no DNS: refused without resolving too
        with pytest.raises(UrlRefused, match="; refused"):
            net_policy.check_url(url, ("ws", "wss"), "socket_url", resolve_host=False)


def test_check_url_resolves_names_and_leaves_unresolvable_ones_to_the_connection():
    policy = OutboundPolicy(resolver=fake_resolver({"inside.test": ["127.0.0.1"], "bots.test": ["93.184.215.14"]}))
    check = net_policy.check_url
    with pytest.raises(UrlRefused, match=r"socket_url 'ws://inside.test/bot': inside.test resolves to 127\.0\.0\.1"):
        check("ws://inside.test/bot", ("ws", "wss"), "socket_url", url_policy=policy)
    assert check(" wss://bots.test/m ", ("ws", "wss"), "socket_url", url_policy=policy) == "wss://bots.test/m"
    assert check("ws://inside.test/bot", ("ws", "wss"), "socket_url", resolve_host=False,
                 url_policy=policy) == "ws://inside.test/bot"  # no DNS asked
    assert check("ws://later.test/", ("ws", "wss"), "socket_url", url_policy=policy) == "ws://later.test/"
    with pytest.raises(UrlRefused, match="later.test does not resolve"):
        check("ws://later.test/", ("ws", "wss"), "socket_url", require_dns=True, url_policy=policy)
    with pytest.raises(UrlRefused, match="expected ws://host/… or wss://host/…"):
        check("http://bots.test/", ("ws", "wss"), "socket_url", url_policy=policy)
    with pytest.raises(UrlRefused, match="is not a valid URL"):
        check("ws://bots.test:99999/", ("ws", "wss"), "socket_url", url_policy=policy)


def test_the_allowlist_applies_when_a_url_is_given(loopback_allowed):
    assert net_policy.check_url("ws://127.0.0.1:9000/", ("ws",), "socket_url") == "ws://127.0.0.1:9000/"
    assert net_policy.check_url("ws://2130706433:9000/", ("ws",), "socket_url") == "ws://2130706433:9000/"
    with pytest.raises(UrlRefused, match="127.0.0.2, a loopback address"):
        net_policy.check_url("ws://127.0.0.2/", ("ws",), "socket_url")


@pytest.fixture
def listener():
    accepted = []
    server = StreamServer(("127.0.0.1", 0), lambda sock, address: accepted.append(address))
    server.start()
    yield server, accepted
    server.stop()


def test_connect_dials_only_the_address_that_was_checked(listener):
    server, _accepted = listener
    answers = {"bot.test": ["127.0.0.1"]}
    policy = OutboundPolicy(resolver=fake_resolver(answers))
    dialled = []

    def dial(address):
        dialled.append(address)
        return socket.create_connection(address, 2)

    with pytest.raises(UrlRefused, match="bot.test resolves to 127.0.0.1"):
        policy.connect("bot.test", server.server_port, dial)
    assert dialled == []  # refused before any socket was opened
    with policy.allowing("127.0.0.1"):
        sock = policy.connect("bot.test", server.server_port, dial)
        sock.close()
    assert dialled == [("127.0.0.1", server.server_port)]  # the name itself is never dialled
    answers["bot.test"] = ["93.184.215.14", "127.0.0.1"]  # DNS changed: one address is internal now
    with pytest.raises(UrlRefused, match="bot.test resolves to 127.0.0.1"):
        policy.connect("bot.test", server.server_port, dial)
    assert len(dialled) == 1


def test_connect_tries_each_checked_address_and_reports_the_last_failure(listener):
    server, accepted = listener
    port = server.server_port
    policy = OutboundPolicy(resolver=fake_resolver({"two.test": ["127.0.0.2", "127.0.0.1"]}))
    with policy.allowing("127.0.0.0/8"):
        sock = policy.connect("two.test", port, lambda address: socket.create_connection(address, 2))
        assert sock.getpeername() == ("127.0.0.1", port)  # 127.0.0.2 refused, the next one answered
        sock.close()
        server.stop()
        with pytest.raises(ConnectionRefusedError):
            policy.connect("two.test", port, lambda address: socket.create_connection(address, 2))
