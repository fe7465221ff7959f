"""Deployment files: FreeSWITCH configuration, dialplan, Vagrantfile, provisioning, systemd.

FreeSWITCH itself cannot run here, so these are the checks that can: every XML file parses,
the configuration installed by deploy/install-freeswitch-conf.sh pre-processes into one valid
document with the settings the gateway relies on, ``frslint analyze`` finds nothing in it, the
provisioning scripts pass ``bash -n``, and the systemd unit is valid (``systemd-analyze verify``
where it exists, and a parse of the keys the gateway needs everywhere).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gateway import dialplan_names as names
from gateway.simulator.dialplan import Dialplan, StopReason, preprocess

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "freeswitch-conf"
DIALPLAN = ROOT / "dialplan"
DEPLOY = ROOT / "deploy"
INSTALL_CONF = DEPLOY / "install-freeswitch-conf.sh"
PROVISION = DEPLOY / "provision.sh"
UNIT = DEPLOY / "systemd" / "voicegw.service"
ESL_PASSWORD = "test-esl-password-0123456789"

XML_FILES = sorted([*CONF.rglob("*.xml"), *CONF.rglob("*.xml.example"), *DIALPLAN.rglob("*.xml")])


def install_conf(dest: Path, password: str = ESL_PASSWORD) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL_CONF), str(ROOT), str(dest), password],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """freeswitch-conf/ and dialplan/ installed as /etc/freeswitch would be."""
    dest = tmp_path_factory.mktemp("etc") / "freeswitch"
    result = install_conf(dest)
    assert result.returncode == 0, result.stderr
    return dest


@pytest.fixture(scope="module")
def document(installed) -> ET.Element:
    """The whole configuration after FreeSWITCH's pre-processor, parsed."""
    return ET.fromstring(preprocess(installed / "freeswitch.xml", {"local_ip_v4": "203.0.113.7"}))


def configuration(document: ET.Element, name: str) -> ET.Element:
    found = [c for c in document.iter("configuration") if c.get("name") == name]
    assert len(found) == 1, f"{name}: {len(found)} found"
    return found[0]


def params(element: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in element.iter("param")}


# --------------------------------------------------------------------------------------------
# XML files


def test_there_are_xml_files_to_check():
    assert len(XML_FILES) >= 15


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_xml_file_parses(path):
    ET.parse(path)


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_preprocessor_lines_are_safe(path):
    """FreeSWITCH's pre-processor works on lines, whatever the XML says.

    It acts on its tag even inside a comment, drops any line that merely mentions it, and
    drops every line holding <include> or </include>: such lines must hold nothing else.
    """
    text = path.read_text()
    for comment in re.findall(r"<!--.*?-->", text, re.DOTALL):
        assert "x-pre-process" not in comment.lower(), comment
    for number, line in enumerate(text.splitlines(), 1):
        if "x-pre-process" in line.lower():
            assert re.fullmatch(r'\s*<X-PRE-PROCESS cmd="(set|include)" data="[^"]*"/>\s*', line), (number, line)
        if "<include>" in line or "</include>" in line:
            assert line.strip() in ("<include>", "</include>"), (number, line)


def test_installed_layout(installed):
    assert (installed / "freeswitch.xml").is_file()
    assert (installed / "dialplan" / "public.xml").is_file()
    assert (installed / "dialplan" / "public" / "10_example_routes.xml").is_file()
    assert (installed / "dialplan" / "gateway_transfer.xml").is_file()
    assert not (installed / "dialplan" / "README.md").exists()
    assert (installed / "directory" / "default").is_dir()
    for source in CONF.rglob("*"):
        if source.is_file() and source.name != "vars.xml":
            assert (installed / source.relative_to(CONF)).read_bytes() == source.read_bytes()


# --------------------------------------------------------------------------------------------
# The ESL password: one place, written at install


def test_esl_password_is_set_in_vars_xml_only(installed, document):
    vars_xml = (installed / "vars.xml").read_text()
    assert f'data="{names.GLOBAL_ESL_PASSWORD}={ESL_PASSWORD}"' in vars_xml
    assert names.ESL_PASSWORD_PLACEHOLDER not in vars_xml
    assert oct((installed / "vars.xml").stat().st_mode & 0o777) == "0o640"
    assert params(configuration(document, "event_socket.conf"))["password"] == ESL_PASSWORD
    # nowhere else: every other file refers to the variable
    for path in [*CONF.rglob("*.xml"), *DIALPLAN.rglob("*.xml")]:
        if path.name != "vars.xml":
            assert names.ESL_PASSWORD_PLACEHOLDER not in path.read_text()


@pytest.mark.parametrize("password", [names.ESL_PASSWORD_PLACEHOLDER, "short", 'with"quote-0123456789',
                                      "with|pipe-0123456789", "with&amp-0123456789", "space in it 0123456789"])
def test_install_refuses_unsafe_passwords(tmp_path, password):
    result = install_conf(tmp_path / "freeswitch", password)

    assert result.returncode != 0
    assert "password" in result.stderr


def test_provisioning_writes_the_same_password_into_the_gateway_environment():
    script = PROVISION.read_text()
    assert 'install-freeswitch-conf.sh" "$SRC" "$FS_CONF" "$ESL_PASSWORD"' in script
    assert "FREESWITCH_NODES=127.0.0.1:8021:$ESL_PASSWORD" in script
    for key in ("GATEWAY_DATABASE_URL=", "GATEWAY_HTTP="):
        assert key in script
    assert "ENV_FILE=$ENV_DIR/voicegw.env" in script and "ENV_DIR=/etc/voicegw" in script


def choose_secrets(env_file: Path) -> dict[str, str]:
    """Run provision.sh's own ``choose_secrets`` against ``env_file``; the values it chose."""
    script = PROVISION.read_text()
    functions = "".join(re.search(rf"^{name}\(\) {{\n.*?^}}\n", script, re.S | re.M).group(0)
                        for name in ("env_value", "choose_secrets"))
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{functions}ENV_FILE={env_file}\nchoose_secrets\n"
                             'printf "%s\\n%s\\n" "$SECRETS_KEY" "$ESL_PASSWORD"'],
                            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    secrets_key, esl_password = result.stdout.splitlines()
    return {"secrets_key": secrets_key, "esl_password": esl_password}


def test_provisioning_writes_a_secrets_key_and_keeps_the_one_it_finds(tmp_path):
    from gateway.secret_keys import SecretKeys

    script = PROVISION.read_text()
    assert "GATEWAY_SECRETS_KEY=$SECRETS_KEY" in script
    first = choose_secrets(tmp_path / "absent.env")["secrets_key"]
    second = choose_secrets(tmp_path / "absent.env")["secrets_key"]
    assert first != second and len(SecretKeys.parse(first, "provision.sh").ids) == 1  # a real Fernet key
    env_file = tmp_path / "voicegw.env"
    env_file.write_text(f"FREESWITCH_NODES=127.0.0.1:8021:pw0123456789\nGATEWAY_SECRETS_KEY={first},{second}\n")
    assert choose_secrets(env_file) == {"secrets_key": f"{first},{second}", "esl_password": "pw0123456789"}


def test_reinstall_keeps_site_files_and_site_settings_win(tmp_path):
    dest = tmp_path / "freeswitch"
    assert install_conf(dest).returncode == 0
    (dest / "vars.local.xml").write_text(
        '<include>\n  <X-PRE-PROCESS cmd="set" data="gateway_carrier=acme"/>\n</include>\n')
    site_route = dest / "dialplan" / "public" / "20_site.xml"
    site_route.write_text('<include>\n  <extension name="site" continue="true">'
                          '<condition field="destination_number" expression="^\\+?15550001111$">'
                          '<action application="set" data="gateway_route=agent"/>'
                          '<action application="set" data="gateway_agent=sales"/>'
                          "</condition></extension>\n</include>\n")
    user = dest / "directory" / "default" / "1002.xml"
    user.write_text("<include><user id=\"1002\"/></include>\n")

    assert install_conf(dest, "another-password-0123456789").returncode == 0

    assert site_route.exists() and user.exists() and (dest / "vars.local.xml").exists()
    dialplan = Dialplan.load_config(dest / "freeswitch.xml")
    call = dialplan.execute(names.TRANSFER_CONTEXT, "+5511999999999")
    assert call.stop.data == "sofia/gateway/acme/+5511999999999"
    call = dialplan.execute(names.PUBLIC_CONTEXT, "+15550001111")
    assert call.stop.reason is StopReason.PARK
    assert call.variables[names.VAR_AGENT] == "sales"


# --------------------------------------------------------------------------------------------
# The whole configuration, pre-processed


def test_configuration_has_the_sections_freeswitch_reads(document):
    assert document.tag == "document" and document.get("type") == "freeswitch/xml"
    assert {s.get("name") for s in document.findall("section")} == {"configuration", "dialplan", "directory"}
    assert "$${" not in ET.tostring(document, encoding="unicode")


def test_event_socket_is_local_and_guarded(document):
    settings = params(configuration(document, "event_socket.conf"))
    assert settings["listen-ip"] == "127.0.0.1"
    assert settings["listen-port"] == "8021"
    assert settings["apply-inbound-acl"] == "loopback.auto"


def test_every_module_the_gateway_needs_is_loaded(document):
    modules = [m.get("module") for m in configuration(document, "modules.conf").iter("load")]
    assert len(modules) == len(set(modules))
    assert set(names.REQUIRED_MODULES) <= set(modules)
    assert {"mod_console", "mod_logfile"} <= set(modules)


def test_sip_profiles(document):
    profiles = {p.get("name"): p for p in configuration(document, "sofia.conf").iter("profile")}
    assert set(profiles) == {"external", "internal"}
    external = params(profiles["external"].find("settings"))
    assert external["context"] == names.PUBLIC_CONTEXT
    assert external["auth-calls"] == "false" and external["apply-inbound-acl"] == "carriers"
    assert external["disable-register"] == "true"
    assert external["sip-ip"] == "203.0.113.7"
    internal = params(profiles["internal"].find("settings"))
    assert internal["context"] == names.AGENTS_CONTEXT
    assert internal["auth-calls"] == "true"
    gateways = profiles["external"].findall("gateways/gateway")
    assert [g.get("name") for g in gateways] == ["carrier"]
    carrier = params(gateways[0])
    assert carrier["register"] == "false" and carrier["caller-id-in-from"] == "true"


def test_carrier_acl_denies_by_default(document):
    lists = {node.get("name"): node for node in configuration(document, "acl.conf").iter("list")}
    assert lists["carriers"].get("default") == "deny"
    assert [n.get("cidr") for n in lists["carriers"].iter("node")] == ["192.0.2.0/24"]


def test_api_expansion_is_off(document):
    assert params(configuration(document, "switch.conf"))["api-expansion"] == "false"


def test_directory_domain(document):
    directory = [s for s in document.findall("section") if s.get("name") == "directory"][0]
    assert [d.get("name") for d in directory.iter("domain")] == ["203.0.113.7"]


def test_dialplan_of_the_whole_configuration_is_the_shipped_one(installed):
    dialplan = Dialplan.load_config(installed / "freeswitch.xml")

    assert set(dialplan.contexts) == set(names.CONTEXTS)
    assert dialplan.api_expansion is False  # read from switch.conf
    assert dialplan.execute(names.PUBLIC_CONTEXT, "+12025550101").variables[names.VAR_ROUTE] == names.ROUTE_BOT
    assert dialplan.execute(names.PUBLIC_CONTEXT, "411").hangup_cause == "UNALLOCATED_NUMBER"


# --------------------------------------------------------------------------------------------
# frslint (PyPI): static analysis of the installed configuration


def frslint() -> str:
    for candidate in (Path(sys.executable).parent / "frslint", shutil.which("frslint")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail("frslint is not installed: pip install -e '.[test]'")


def test_frslint_analyze_reports_no_issues(installed):
    result = subprocess.run([frslint(), "analyze", "--format", "json", str(installed / "freeswitch.xml")],
                            capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)

    assert report["summary"]["errors"] == 0, report["issues"]
    assert report["summary"]["warnings"] == 0, report["issues"]
    assert result.returncode == 0


def test_frslint_analyze_does_see_the_dialplan(installed, tmp_path):
    """A planted error must be found, so that "no issues" means something."""
    broken = tmp_path / "freeswitch"
    shutil.copytree(installed, broken)
    public = broken / "dialplan" / "public.xml"
    public.write_text(public.read_text().replace('data="UNALLOCATED_NUMBER"', 'data="$${no_such_var}"'))

    result = subprocess.run([frslint(), "analyze", "--format", "json", str(broken / "freeswitch.xml")],
                            capture_output=True, text=True, timeout=120)

    assert json.loads(result.stdout)["summary"]["errors"] == 1
    assert result.returncode == 1


def test_frslint_lint_finds_no_style_issue(installed):
    result = subprocess.run([frslint(), "lint", "--format", "json", str(installed / "freeswitch.xml")],
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout


# --------------------------------------------------------------------------------------------
# Vagrantfile and provisioning


@pytest.mark.parametrize("script", [PROVISION, INSTALL_CONF], ids=lambda p: p.name)
def test_shell_scripts_pass_bash_n(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()


def test_vagrantfile_provisions_debian_12_with_the_script_and_a_token_from_the_environment():
    vagrantfile = (ROOT / "Vagrantfile").read_text()

    assert re.search(r'config\.vm\.box\s*=\s*"debian/bookworm64"', vagrantfile)
    match = re.search(r'config\.vm\.provision\s+"shell",\s*path:\s*"([^"]+)"', vagrantfile)
    assert match and (ROOT / match.group(1)) == PROVISION
    assert re.search(r'"FS_TOKEN"\s*=>\s*ENV\.fetch\("FS_TOKEN"', vagrantfile)
    assert re.search(r'"VOICEGW_SRC"\s*=>\s*"/vagrant"', vagrantfile)
    if shutil.which("ruby"):
        result = subprocess.run(["ruby", "-c", str(ROOT / "Vagrantfile")], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_no_secret_is_committed():
    for path in [ROOT / "Vagrantfile", PROVISION, INSTALL_CONF, UNIT, *CONF.rglob("*.xml")]:
        text = path.read_text()
        assert not re.search(r"\bpat_[A-Za-z0-9]{8,}", text), path  # SignalWire tokens
        assert "ClueCon" not in text, path  # FreeSWITCH's default ESL password


def test_provisioning_installs_a_package_for_every_packaged_module(document):
    script = PROVISION.read_text()
    packages = set(re.findall(r"^\s+(freeswitch[a-z0-9-]*)$", script, re.MULTILINE))
    modules = [m.get("module") for m in configuration(document, "modules.conf").iter("load")]
    for module in modules:
        if module == "mod_audio_stream":  # built from source
            continue
        assert "freeswitch-" + module.replace("_", "-") in packages, module
    assert {"freeswitch", "freeswitch-systemd"} <= packages
    assert "mod_audio_stream.so" in script and "libfreeswitch-dev" in script
    assert '"$SRC/deploy/systemd/voicegw.service" /etc/systemd/system/voicegw.service' in script


# --------------------------------------------------------------------------------------------
# systemd


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: sections of keys, each key with all its values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"line {number}: {raw!r}"
        key, _, value = line.partition("=")
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"line {number}: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_gateway_unit_has_what_the_service_needs():
    unit = parse_unit(UNIT.read_text())

    assert set(unit) == {"Unit", "Service", "Install"}
    assert "freeswitch.service" in " ".join(unit["Unit"]["After"]).split()
    assert "freeswitch.service" in " ".join(unit["Unit"]["Wants"]).split()
    service = unit["Service"]
    assert service["ExecStart"] == ["/opt/voicegw/venv/bin/voicegw serve"]
    assert service["Restart"] == ["on-failure"]
    assert service["EnvironmentFile"] == ["/etc/voicegw/voicegw.env"]
    assert service["User"] == ["voicegw"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path):
    # verify insists that ExecStart exists: stand an executable in for the virtualenv's
    fake = tmp_path / "voicegw"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    unit = tmp_path / "voicegw.service"
    unit.write_text(UNIT.read_text().replace("/opt/voicegw/venv/bin/voicegw", str(fake)))

    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)

    # unknown keys and bad values are only warnings: any output counts as a failure
    assert result.returncode == 0 and not result.stdout and not result.stderr, result.stdout + result.stderr


DEPRECATED_PROFILE_PARAMS = {"rtp-timeout-sec", "rtp-hold-timeout-sec"}  # FreeSWITCH 1.10 warns twice per profile


def test_sip_profiles_use_no_deprecated_parameters_and_calls_get_media_timeouts(document):
    for profile in configuration(document, "sofia.conf").iter("profile"):
        assert DEPRECATED_PROFILE_PARAMS.isdisjoint(params(profile.find("settings"))), profile.get("name")
    # their replacement, the channel variables, on inbound calls (dialplan) and outbound legs (originate)
    from gateway.calls.dialstring import originate_command
    command = originate_command("u-1", "sofia/gateway/carrier/15551230001", "+15550100")
    for name, value in names.MEDIA_TIMEOUT_VARIABLES.items():
        assert f"{name}={value}" in command
    inbound = next(e for e in document.iter("extension") if e.get("name") == names.EXT_INBOUND)
    sets = [a.get("data") for a in inbound.iter("action") if a.get("application") == "set"]
    assert {f"{k}={v}" for k, v in names.MEDIA_TIMEOUT_VARIABLES.items()} <= set(sets)


def test_calls_that_get_a_stream_write_silence_while_parked(document):
    """A bidirectional mod_audio_stream plays into the frames a channel writes; a parked
    channel writes none without send_silence_when_idle, read when media comes up, so it
    must be set before the park (research/downlink.md §2)."""
    from gateway.calls.dialstring import originate_command
    command = originate_command("u-1", "sofia/gateway/carrier/15551230001", "+15550100")
    assert "send_silence_when_idle=-1" in command
    inbound = next(e for e in document.iter("extension") if e.get("name") == names.EXT_INBOUND)
    actions = [(a.get("application"), a.get("data")) for a in inbound.iter("action")]
    assert actions.index(("set", "send_silence_when_idle=-1")) < actions.index(("park", None))
