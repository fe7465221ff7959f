"""``voicegw`` commands run in-process, as ``gateway.cli`` runs them, with the whole parser.

``cli("keys", "create", "acme")`` returns what the command printed: its stdout when it
succeeds (nothing may go to stderr then), its stderr when ``status`` says it fails.
Import the fixture with ``from cli_support import cli`` (it points the commands at the
test's database).
"""

from __future__ import annotations

import json
import re

import pytest

from gateway.cli import build_parser


class Cli:
    def __init__(self, capsys):
        self.parser = build_parser()
        self.capsys = capsys

    def __call__(self, *argv, status=0):
        args = self.parser.parse_args(argv)
        result = args.func(args)
        out, err = self.capsys.readouterr()
        assert result == status, (argv, out, err)
        if status == 0:
            assert err == ""
            return out
        return err

    def json(self, *argv):
        return json.loads(self(*argv, "--json"))

    def fails(self, *argv, match):
        """Run a command that must be refused: exit 2, one line on stderr, nothing on stdout."""
        err = self(*argv, status=2)
        assert err.startswith("voicegw: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
        assert re.search(match, err), err
        return err


@pytest.fixture
def cli(database, database_url, monkeypatch, capsys):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    return Cli(capsys)
