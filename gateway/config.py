"""Settings from the environment and one optional config file.

Each setting has an environment variable; a config file (INI or TOML, named by
``GATEWAY_CONFIG`` or passed in) may set the same keys in lower case. The
environment beats the file, and the file beats the defaults.

A TOML file sets the keys at the top level (``freeswitch_nodes`` may also be a
list of strings)::

    gateway_database_url = "postgresql://voicegw@db.internal/voicegw"
    gateway_http = "0.0.0.0:8000"
    freeswitch_nodes = ["10.0.0.5:8021:ClueCon", "10.0.0.6:8021:ClueCon"]

any other file is read as INI, with the keys in a ``[gateway]`` section::

    [gateway]
    gateway_http = 0.0.0.0:8000

Every malformed value raises ``ValueError`` naming where it came from.
"""
from __future__ import annotations

import configparser
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

from gateway.domain import PLAYBACK_FORMS, PlaybackForm
from gateway.net_policy import ALLOWLIST_ALIAS as OUTBOUND_ALLOWLIST_ALIAS
from gateway.net_policy import ALLOWLIST_VAR as OUTBOUND_ALLOWLIST_VAR
from gateway.net_policy import IPNetwork, parse_allowlist
from gateway.secret_keys import KEY_VAR as SECRETS_KEY_VAR
from gateway.secret_keys import SecretKeys

DATABASE_URL_VAR = "GATEWAY_DATABASE_URL"
HTTP_VAR = "GATEWAY_HTTP"
NODES_VAR = "FREESWITCH_NODES"
CONFIG_VAR = "GATEWAY_CONFIG"
MEDIA_LISTEN_VAR = "GATEWAY_MEDIA_LISTEN"
MEDIA_URL_VAR = "GATEWAY_MEDIA_URL"
MEDIA_PLAYBACK_VAR = "GATEWAY_MEDIA_PLAYBACK"
MEDIA_ENABLED_VAR = "GATEWAY_MEDIA_ENABLED"
BOT_CONNECT_TIMEOUT_VAR = "GATEWAY_BOT_CONNECT_TIMEOUT"
ELEVENLABS_URL_VAR = "ELEVENLABS_API_URL"
VAPI_URL_VAR = "VAPI_API_URL"
ADMISSION_WAIT_VAR = "GATEWAY_ADMISSION_WAIT"
MEDIA_DIR_VAR = "GATEWAY_MEDIA_DIR"
METRICS_TOKEN_VAR = "GATEWAY_METRICS_TOKEN"

_MEDIA_VARS = (MEDIA_ENABLED_VAR, MEDIA_LISTEN_VAR, MEDIA_URL_VAR, MEDIA_PLAYBACK_VAR, BOT_CONNECT_TIMEOUT_VAR,
               ELEVENLABS_URL_VAR, VAPI_URL_VAR)
_SETTING_VARS = (DATABASE_URL_VAR, HTTP_VAR, NODES_VAR, ADMISSION_WAIT_VAR, MEDIA_DIR_VAR) + _MEDIA_VARS
_SETTING_VARS += (OUTBOUND_ALLOWLIST_VAR, OUTBOUND_ALLOWLIST_ALIAS, SECRETS_KEY_VAR, METRICS_TOKEN_VAR)
DEFAULT_MEDIA_PORT = 8090
#: Seconds a placed call may wait for its FreeSWITCH node's session budget before it
#: fails (``calls/admission.py``): a burst of 1,500 calls at a shipped node's 26 a second.
DEFAULT_ADMISSION_WAIT = 60.0
MAX_ADMISSION_WAIT = 3600.0
_INI_SECTION = "gateway"
#: Audio clips and call recordings (``gateway.recordings``), relative to the working directory.
DEFAULT_MEDIA_DIR = "voicegw-media"


class HttpAddress(NamedTuple):
    """Where the API listens; a plain ``(host, port)`` tuple for socket APIs."""

    host: str
    port: int


@dataclass(frozen=True)
class NodeConfig:
    """One FreeSWITCH node reached over the Event Socket."""

    name: str
    host: str
    port: int
    password: str

    @classmethod
    def parse(cls, text: str, source: str = NODES_VAR) -> NodeConfig:
        """Parse ``host:port:password``; the password may itself contain colons."""
        text = text.strip()
        host, rest = _split_host(text, source)
        port_text, sep, password = rest.partition(":")
        if not sep or not password:
            raise ValueError(
                f"{source}: node {text!r} has no password; expected host:port:password"
            )
        port = _parse_port(port_text, f"{source}: node {text!r}", minimum=1)
        name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return cls(name=name, host=host, port=port, password=password)


@dataclass(frozen=True)
class MediaSettings:
    """The media bridge and the bot connectors.

    ``playback`` is how a bot's audio is played into calls of a node
    (``gateway.media.downlink``): ``stream`` (the default: a bidirectional
    mod_audio_stream build writes binary frames straight into the call) or ``files``
    (the community build: each ~200 ms chunk becomes a file that the gateway queues with
    ``sendmsg`` playback).  ``playback_nodes`` overrides it per node name (``host:port``
    as in FREESWITCH_NODES).  ``voicegw doctor`` plays a tone through a node's form and
    says whether it was heard.
    """

    # Port 0 (any free port) suits FreeSWITCH on the same host; ``voicegw serve`` listens on
    # 8090 unless GATEWAY_MEDIA_LISTEN says otherwise.
    enabled: bool = True  # False: no bridge, answered calls get no bot (API-only tests)
    listen: HttpAddress = HttpAddress("127.0.0.1", 0)
    public_url: str | None = None  # ws://host:port that FreeSWITCH dials; default: from listen
    playback: str = PlaybackForm.STREAM.value
    playback_nodes: tuple[tuple[str, str], ...] = ()
    bot_connect_timeout: float = 3.0
    elevenlabs_url: str = "wss://api.elevenlabs.io"
    vapi_url: str = "https://api.vapi.ai"

    def playback_for(self, node: str | None) -> str:
        return dict(self.playback_nodes).get(node or "", self.playback)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.listen.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"ws://{host}:{self.listen.port}"


@dataclass(frozen=True)
class Settings:
    """Everything a gateway process needs to know before it starts."""

    database_url: str
    http: HttpAddress = HttpAddress("127.0.0.1", 8000)
    freeswitch_nodes: tuple[NodeConfig, ...] = field(
        default_factory=lambda: (NodeConfig("127.0.0.1:8021", "127.0.0.1", 8021, "ClueCon"),)
    )
    media: MediaSettings = field(default_factory=MediaSettings)
    admission_wait: float = DEFAULT_ADMISSION_WAIT
    #: Audio clips and recordings; the same path on the FreeSWITCH host (``gateway.recordings``).
    media_dir: Path = field(default_factory=lambda: Path(DEFAULT_MEDIA_DIR).resolve())
    #: Internal addresses customer URLs (webhooks, bot sockets) may reach anyway
    #: (``gateway.net_policy``; a process applies it with ``net_policy.configure``).
    outbound_allowlist: tuple[IPNetwork, ...] = ()
    #: The keys stored secrets are encrypted with (``gateway.secret_keys``; a process
    #: applies them with ``secret_keys.configure``); None: each database's fallback.
    secrets_keys: SecretKeys | None = None
    #: The bearer token ``/metrics`` asks for; None: the page is open to whoever reaches
    #: the HTTP address.
    metrics_token: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] = os.environ, config_file: str | os.PathLike | None = None
    ) -> Settings:
        """Build settings from ``environ`` over ``config_file`` over the defaults.

        ``config_file`` wins over ``GATEWAY_CONFIG``; with neither, no file is read.
        """
        path = config_file if config_file is not None else environ.get(CONFIG_VAR)
        raw = _read_config_file(Path(path)) if path else {}
        raw.update({var: (environ[var], var) for var in _SETTING_VARS if var in environ})

        database_url = f"sqlite:///{os.getcwd()}/voicegw.sqlite3"
        if DATABASE_URL_VAR in raw:
            database_url, source = raw[DATABASE_URL_VAR]
            database_url = database_url.strip()
            if not database_url:
                raise ValueError(f"{source}: the database URL is empty")
        parsed = {}
        if HTTP_VAR in raw:
            parsed["http"] = _parse_http(*raw[HTTP_VAR])
        if NODES_VAR in raw:
            parsed["freeswitch_nodes"] = _parse_nodes(*raw[NODES_VAR])
        parsed["media"] = _parse_media(raw)
        if MEDIA_DIR_VAR in raw:
            text, source = raw[MEDIA_DIR_VAR]
            if not text.strip():
                raise ValueError(f"{source}: the media directory is empty")
            parsed["media_dir"] = Path(text.strip()).expanduser().resolve()
        if ADMISSION_WAIT_VAR in raw:
            parsed["admission_wait"] = _parse_admission_wait(*raw[ADMISSION_WAIT_VAR])
        allowlist_var = OUTBOUND_ALLOWLIST_VAR if OUTBOUND_ALLOWLIST_VAR in raw else OUTBOUND_ALLOWLIST_ALIAS
        if allowlist_var in raw:  # the former name counts only without the new one
            text, source = raw[allowlist_var]
            parsed["outbound_allowlist"] = parse_allowlist(text, source)
        if SECRETS_KEY_VAR in raw:
            parsed["secrets_keys"] = SecretKeys.parse(*raw[SECRETS_KEY_VAR])
        if METRICS_TOKEN_VAR in raw:
            parsed["metrics_token"] = str(raw[METRICS_TOKEN_VAR][0]).strip() or None
        return cls(database_url=database_url, **parsed)


def _read_config_file(path: Path) -> dict[str, tuple[str | list, str]]:
    """Return ``{ENV_VAR_NAME: (value, source)}`` for the keys the file sets."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"config file {path}: cannot be read ({exc.strerror})") from None
    if path.suffix.lower() == ".toml":
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path}: invalid TOML ({exc})") from None
    else:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as exc:
            raise ValueError(f"config file {path}: invalid INI ({exc})") from None
        if parser.sections() != [_INI_SECTION]:
            raise ValueError(
                f"config file {path}: expected exactly one [{_INI_SECTION}] section,"
                f" found {parser.sections()}"
            )
        values = dict(parser[_INI_SECTION])

    known = {var.lower(): var for var in _SETTING_VARS}
    result = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(
                f"config file {path}: unknown key {key!r}; known keys are {sorted(known)}"
            )
        list_ok = key == NODES_VAR.lower()
        if not (isinstance(value, str) or (list_ok and isinstance(value, list))):
            raise ValueError(f"config file {path}: {key} must be a string")
        result[known[key]] = (value, f"config file {path}: {key}")
    return result


def _parse_http(text: str, source: str) -> HttpAddress:
    text = text.strip()
    host, rest = _split_host(text, source)
    # Port 0 is allowed: the OS picks a free port, which tests rely on.
    return HttpAddress(host, _parse_port(rest, f"{source}: {text!r}", minimum=0))


def _parse_admission_wait(text: str, source: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{source}: {text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_ADMISSION_WAIT:  # also refuses nan and inf
        raise ValueError(f"{source}: {value} is out of range (0, {MAX_ADMISSION_WAIT:g}] seconds")
    return value


def _parse_media(raw: dict) -> MediaSettings:
    media: dict = {"listen": HttpAddress("127.0.0.1", DEFAULT_MEDIA_PORT)}
    if MEDIA_ENABLED_VAR in raw:
        text, source = raw[MEDIA_ENABLED_VAR]
        flag = text.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"{source}: {text!r} is not true or false")
        media["enabled"] = flag in ("true", "1", "yes", "on")
    if MEDIA_LISTEN_VAR in raw:
        media["listen"] = _parse_http(*raw[MEDIA_LISTEN_VAR])
    if MEDIA_URL_VAR in raw:
        text, source = raw[MEDIA_URL_VAR]
        text = text.strip()
        if not (text.startswith("ws://") or text.startswith("wss://")) or len(text.split("/")) < 3:
            raise ValueError(f"{source}: {text!r} is not a ws:// or wss:// URL")
        media["public_url"] = text
    if MEDIA_PLAYBACK_VAR in raw:
        text, source = raw[MEDIA_PLAYBACK_VAR]
        nodes = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            node, sep, form = item.rpartition("=") if "=" in item else ("", "", item)
            form = form.strip().lower()
            if form not in PLAYBACK_FORMS:
                raise ValueError(f"{source}: playback form {form!r} is invalid; expected files or stream")
            if sep:
                nodes.append((node.strip(), form))
            else:
                media["playback"] = form
        media["playback_nodes"] = tuple(nodes)
    if BOT_CONNECT_TIMEOUT_VAR in raw:
        text, source = raw[BOT_CONNECT_TIMEOUT_VAR]
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{source}: {text!r} is not a number of seconds") from None
        if not 0 < value <= 60:
            raise ValueError(f"{source}: {value} is out of range (0, 60] seconds")
        media["bot_connect_timeout"] = value
    for var, key in ((ELEVENLABS_URL_VAR, "elevenlabs_url"), (VAPI_URL_VAR, "vapi_url")):
        if var in raw:
            media[key] = raw[var][0].strip().rstrip("/")
    return MediaSettings(**media)


def _parse_nodes(value: str | list, source: str) -> tuple[NodeConfig, ...]:
    items = value if isinstance(value, list) else value.split(",")
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{source}: every node must be a host:port:password string")
    nodes = tuple(NodeConfig.parse(item, source) for item in items if item.strip())
    if not nodes:
        raise ValueError(f"{source}: no FreeSWITCH node given; expected host:port:password")
    names = [node.name for node in nodes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{source}: node listed twice: {', '.join(duplicates)}")
    return nodes


def _split_host(text: str, source: str) -> tuple[str, str]:
    """Split ``host:rest`` where host may be a bracketed IPv6 literal."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]:")
    else:
        host, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"{source}: {text!r} has no port; expected host:port")
    if not host:
        raise ValueError(f"{source}: {text!r} has no host")
    return host, rest


def _parse_port(text: str, where: str, minimum: int) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{where}: port {text!r} is not an integer")
    port = int(text)
    if not minimum <= port <= 65535:
        raise ValueError(f"{where}: port {port} is out of range {minimum}-65535")
    return port
