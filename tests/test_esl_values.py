"""``gateway.esl.values.switch_true``: FreeSWITCH's reading of a variable as a flag."""

import pytest

from gateway.esl.values import switch_true


@pytest.mark.parametrize("value", ["yes", "on", "true", "t", "enabled", "active", "allow",
                                   "YES", "True", "T", "1", "-1", "+2", "42", "1.5", "007"])
def test_true(value):
    assert switch_true(value)


@pytest.mark.parametrize("value", [None, "", "no", "off", "false", "f", "0", "-0", "0.9", ".5", "-",
                                   " yes", "yes ", "1 ", "1e3", "y", "enable", "consume"])
def test_false(value):
    assert not switch_true(value)
