import dataclasses

import pytest

from gateway.config import HttpAddress, NodeConfig, Settings


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{tmp_path}/voicegw.sqlite3"
    assert settings.http == HttpAddress("127.0.0.1", 8000)
    assert settings.freeswitch_nodes == (
        NodeConfig(name="127.0.0.1:8021", host="127.0.0.1", port=8021, password="ClueCon"),
    )


def test_environment_values():
    settings = Settings.from_env(
        {
            "GATEWAY_DATABASE_URL": "postgresql://voicegw@db/voicegw",
            "GATEWAY_HTTP": "0.0.0.0:0",
            "FREESWITCH_NODES": "fs1:8021:se:cr:et, [::1]:8022:pw",
        }
    )
    assert settings.database_url == "postgresql://voicegw@db/voicegw"
    host, port = settings.http
    assert (host, port) == ("0.0.0.0", 0)
    assert settings.freeswitch_nodes == (
        NodeConfig("fs1:8021", "fs1", 8021, "se:cr:et"),
        NodeConfig("[::1]:8022", "::1", 8022, "pw"),
    )


def test_settings_are_frozen():
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.database_url = "sqlite:///other"


def test_toml_file_under_environment(tmp_path):
    path = tmp_path / "voicegw.toml"
    path.write_text(
        'gateway_database_url = "sqlite:///from-file.sqlite3"\n'
        'gateway_http = "10.0.0.1:9000"\n'
        'freeswitch_nodes = ["a:1:x", "b:2:y"]\n'
    )
    settings = Settings.from_env({"GATEWAY_HTTP": "127.0.0.1:7000"}, config_file=path)
    assert settings.database_url == "sqlite:///from-file.sqlite3"
    assert settings.http == HttpAddress("127.0.0.1", 7000)
    assert [node.name for node in settings.freeswitch_nodes] == ["a:1", "b:2"]


def test_ini_file_named_by_environment(tmp_path):
    path = tmp_path / "voicegw.ini"
    path.write_text("[gateway]\nfreeswitch_nodes = fs9:8021:ClueCon\n")
    settings = Settings.from_env({"GATEWAY_CONFIG": str(path)})
    assert settings.freeswitch_nodes == (NodeConfig("fs9:8021", "fs9", 8021, "ClueCon"),)


def test_argument_beats_config_variable(tmp_path):
    chosen = tmp_path / "chosen.ini"
    chosen.write_text("[gateway]\ngateway_http = 127.0.0.1:1111\n")
    settings = Settings.from_env({"GATEWAY_CONFIG": str(tmp_path / "absent.ini")}, chosen)
    assert settings.http.port == 1111


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"FREESWITCH_NODES": "fs1:8021"}, "node 'fs1:8021' has no password"),
        ({"FREESWITCH_NODES": "fs1:8021:"}, "node 'fs1:8021:' has no password"),
        ({"FREESWITCH_NODES": "fs1:port:pw"}, "port 'port' is not an integer"),
        ({"FREESWITCH_NODES": "fs1:0:pw"}, "port 0 is out of range 1-65535"),
        ({"FREESWITCH_NODES": "fs1"}, "'fs1' has no port"),
        ({"FREESWITCH_NODES": ":8021:pw"}, "has no host"),
        ({"FREESWITCH_NODES": " , "}, "no FreeSWITCH node given"),
        ({"FREESWITCH_NODES": "a:1:x,a:1:y"}, "node listed twice: a:1"),
        ({"GATEWAY_HTTP": "localhost"}, "GATEWAY_HTTP: 'localhost' has no port"),
        ({"GATEWAY_HTTP": "localhost:http"}, "port 'http' is not an integer"),
        ({"GATEWAY_HTTP": "localhost:²"}, "port '²' is not an integer"),
        ({"GATEWAY_HTTP": "localhost:70000"}, "port 70000 is out of range 0-65535"),
        ({"GATEWAY_DATABASE_URL": " "}, "GATEWAY_DATABASE_URL: the database URL is empty"),
    ],
)
def test_bad_environment_values(environ, message):
    with pytest.raises(ValueError, match=message) as excinfo:
        Settings.from_env(environ)
    assert str(excinfo.value).startswith(next(iter(environ)))


def test_missing_config_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ValueError, match=f"config file {path}: cannot be read"):
        Settings.from_env({"GATEWAY_CONFIG": str(path)})


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.toml", "gateway_http = ", "invalid TOML"),
        ("bad.toml", "gateway_htp = '1:2'", "unknown key 'gateway_htp'"),
        ("bad.toml", "gateway_http = 8000", "gateway_http must be a string"),
        ("bad.toml", "freeswitch_nodes = [1]", "every node must be a host:port:password"),
        ("bad.ini", "gateway_http = 1:2", "invalid INI"),
        ("bad.ini", "[voicegw]\ngateway_http = 1:2\n", r"exactly one \[gateway\] section"),
        ("bad.ini", "[gateway]\nfreeswitch_nodes = fs1:8021\n", "freeswitch_nodes: node"),
    ],
)
def test_bad_config_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as excinfo:
        Settings.from_env({}, config_file=path)
    assert str(excinfo.value).startswith(f"config file {path}")


def test_media_dir_from_file_and_environment(tmp_path, monkeypatch):
    from gateway.recordings import media_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_MEDIA_DIR", raising=False)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    assert Settings.from_env({}).media_dir == tmp_path / "voicegw-media"
    conf = tmp_path / "gw.toml"
    conf.write_text('gateway_media_dir = "shared/media"\n')
    assert Settings.from_env({}, config_file=conf).media_dir == tmp_path / "shared" / "media"
    assert Settings.from_env({"GATEWAY_MEDIA_DIR": "/srv/media"}, config_file=conf).media_dir.as_posix() == "/srv/media"
    with pytest.raises(ValueError, match="GATEWAY_MEDIA_DIR: the media directory is empty"):
        Settings.from_env({"GATEWAY_MEDIA_DIR": " "})
    # the process's file (voicegw --config sets GATEWAY_CONFIG) is what the media code reads
    monkeypatch.setenv("GATEWAY_CONFIG", str(conf))
    assert media_root() == tmp_path / "shared" / "media"


def test_voicegw_config_option_names_the_file_for_the_whole_process(tmp_path, monkeypatch):
    from gateway import cli
    from gateway.recordings import media_root

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_MEDIA_DIR", raising=False)
    conf = tmp_path / "gw.ini"
    conf.write_text(f"[gateway]\ngateway_media_dir = {tmp_path / 'm'}\ngateway_database_url = sqlite:///{tmp_path}/x.db\n")
    monkeypatch.setenv("GATEWAY_CONFIG", "")  # restored after the test: main() sets it
    assert cli.main(["--config", str(conf), "migrate"]) == 0
    assert (tmp_path / "x.db").exists()
    assert media_root() == tmp_path / "m"  # read later, elsewhere: the same file
