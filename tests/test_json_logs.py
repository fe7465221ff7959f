"""JSON log lines: each parses, and a call's lines carry its ``call_uuid``."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from gateway import json_logs

CALL = "0b6f4a5e-3d2c-4e1f-9a8b-7c6d5e4f3a2b"


@pytest.fixture
def captured():
    """The root logger's lines, as JSON, at DEBUG, for the test's length."""
    stream = io.StringIO()
    handler = json_logs.handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_call_uuid_comes_from_extra_the_greenlet_context_or_the_call_prefix(captured):
    log = logging.getLogger("gateway.test")
    log.info("explicit", extra={"call_uuid": CALL})
    with json_logs.call_context(CALL):
        log.info("inside the context")
    log.warning("call %s: hung up by the bot", CALL.upper())
    log.info("call %s < frame", CALL)
    log.info("not about a call")
    lines = captured()
    assert [line.get("call_uuid") for line in lines] == [CALL, CALL, CALL, CALL, None]
    assert lines[2] == {"time": lines[2]["time"], "level": "WARNING", "logger": "gateway.test",
                        "message": f"call {CALL.upper()}: hung up by the bot", "call_uuid": CALL}
    assert lines[0]["time"].endswith("Z")


def test_an_exception_is_one_line_with_its_traceback(captured):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("gateway.test").exception("call %s: failed", CALL)
    (line,) = captured()
    assert line["call_uuid"] == CALL and "RuntimeError: boom" in line["exception"]


def test_an_unknown_log_format_is_refused_in_one_line():
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "--log-format", "xml", "doctor"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'xml'" in result.stderr


def test_an_unknown_format_in_the_environment_is_refused(tmp_path):
    env = {"GATEWAY_LOG_FORMAT": "yaml", "PATH": "", "PYTHONPATH": ":".join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "doctor"], capture_output=True, text=True,
                            timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 2 and "log format 'yaml': expected one of text, json" in result.stderr
