"""``voicegw doctor``: is this install able to carry calls?

Each check prints one line, ``ok`` or ``FAIL`` with the reason and what to do about it;
the exit status is the number of failed checks (0 = healthy).  Checked, per FreeSWITCH
node: the Event Socket accepts our password, every module the gateway uses is loaded
(``module_exists``), and every dialplan context it transfers into or routes through is
present (``xml_locate dialplan context name …``), and a bot is heard in the node's playback
form (``gateway.playback_probe``: a loopback test call plays a tone through the configured
form and records what a caller hears); then the database is reachable and migrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from gateway import dialplan_names as names
from gateway import playback_probe
from gateway.config import NodeConfig, Settings
from gateway.esl import commands
from gateway.esl.connection import CommandFailed, ESLLink
from gateway.media.bridge import MediaBridge
from gateway.models import MIGRATIONS, SchemaVersion, connect


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}" + (f": {self.detail}" if self.detail else "")


def check_playback(node: NodeConfig, settings: Settings, bridge: MediaBridge) -> Check:
    """Is a bot heard on ``node`` in the form the settings give it?"""
    form = settings.media.playback_for(node.name)
    result = playback_probe.probe(node.host, node.port, node.password, bridge, form, settings.media_dir)
    return Check(f"{node.name} bot audio ({form} form)", result.ok, result.summary())


def check_node(node: NodeConfig, timeout: float = 5.0) -> Iterator[Check]:
    link = ESLLink(node.host, node.port, node.password, on_event=lambda event: None, timeout=timeout)
    try:
        link.connect()
    except ValueError:
        yield Check(f"ESL {node.name}", False, "password refused: set the same password in FREESWITCH_NODES "
                                              "and in FreeSWITCH's vars.xml (esl_password)")
        return
    except Exception as exc:  # refused, unreachable, timed out
        yield Check(f"ESL {node.name}", False, f"{exc or type(exc).__name__}: is FreeSWITCH running and "
                                              "event_socket listening there?")
        return
    try:
        yield Check(f"ESL {node.name}", True, link.api(commands.VERSION).strip())
        for module in names.REQUIRED_MODULES:
            loaded = _api(link, commands.module_exists(module)) == "true"
            yield Check(f"{node.name} module {module}", loaded,
                        "" if loaded else f"load it: add it to modules.conf.xml, then `fs_cli -x 'load {module}'`")
        for context in names.CONTEXTS:
            found = _api(link, commands.locate_context(context))
            present = found.lstrip().startswith("<")
            yield Check(f"{node.name} dialplan context {context}", present,
                        "" if present else "install the gateway's dialplan/ (see docs/deploy.md) and `reloadxml`")
    finally:
        link.close()


def _api(link: ESLLink, command: str) -> str:
    try:
        return link.api(command).strip()
    except CommandFailed as exc:
        return exc.reply.strip()


def check_database(url: str) -> Iterator[Check]:
    db = connect(url)
    try:
        db.connect(reuse_if_open=True)
        applied = {row.version for row in SchemaVersion.select().execute(db)} if db.table_exists("schema_version") else set()
    except Exception as exc:
        yield Check("database", False, f"{type(exc).__name__}: {exc}".strip())
        return
    finally:
        db.close()
    missing = len(MIGRATIONS) - len(applied)
    yield Check("database", missing == 0,
                f"{len(applied)}/{len(MIGRATIONS)} migrations applied" + ("; run `voicegw migrate`" if missing else ""))


def run(settings: Settings, out: Callable[[str], None] = print) -> int:
    checks: list[Check] = []
    bridge = MediaBridge(settings.media.listen.host, 0) if settings.media.enabled else None
    if bridge is not None:
        bridge.start()
    try:
        for node in settings.freeswitch_nodes:
            node_checks = list(check_node(node))
            checks += node_checks
            if bridge is not None and all(check.ok for check in node_checks):
                checks.append(check_playback(node, settings, bridge))
    finally:
        if bridge is not None:
            bridge.stop()
    checks += check_database(settings.database_url)
    for check in checks:
        out(check.line())
    failed = sum(not check.ok for check in checks)
    out(f"{len(checks) - failed} ok, {failed} failed")
    return min(failed, 100)
