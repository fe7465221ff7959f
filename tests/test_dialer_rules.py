"""The dialer's IO-free rules: calling windows in a contact's zone, outcomes and retries."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.dialer.outcomes import after_attempt, outcome_of
from gateway.dialer.windows import Window, parse_clock, zone_of_number

UTC = timezone.utc
WEEKDAYS_9_TO_8 = Window.of([1, 2, 3, 4, 5], "09:00", "20:00")


def test_a_window_is_open_on_its_days_between_its_hours_end_excluded():
    monday = datetime(2030, 1, 7, tzinfo=UTC)  # a Monday
    assert not WEEKDAYS_9_TO_8.open_at(monday.replace(hour=8, minute=59))
    assert WEEKDAYS_9_TO_8.open_at(monday.replace(hour=9))
    assert WEEKDAYS_9_TO_8.open_at(monday.replace(hour=19, minute=59))
    assert not WEEKDAYS_9_TO_8.open_at(monday.replace(hour=20))
    assert not WEEKDAYS_9_TO_8.open_at(datetime(2030, 1, 12, 12, tzinfo=UTC))  # Saturday


def test_an_overnight_window_belongs_to_the_day_it_starts():
    friday_nights = Window.of([5], "21:00", "02:00")
    assert friday_nights.open_at(datetime(2030, 1, 11, 22, tzinfo=UTC))  # Friday 22:00
    assert friday_nights.open_at(datetime(2030, 1, 12, 1, 30, tzinfo=UTC))  # Saturday 01:30
    assert not friday_nights.open_at(datetime(2030, 1, 12, 22, tzinfo=UTC))  # Saturday 22:00
    assert not friday_nights.open_at(datetime(2030, 1, 11, 1, 30, tzinfo=UTC))  # Friday 01:30: Thursday's night


def test_the_next_opening_is_in_the_contacts_zone():
    # 12:00 UTC on Monday is 07:00 in New York and 17:30 in Kolkata.
    noon = datetime(2030, 1, 7, 12, tzinfo=UTC)
    assert WEEKDAYS_9_TO_8.next_open(noon, "Asia/Kolkata") == noon
    assert WEEKDAYS_9_TO_8.next_open(noon, "America/New_York") == datetime(2030, 1, 7, 14, tzinfo=UTC)
    friday_late = datetime(2030, 1, 11, 23, tzinfo=UTC)  # 18:00 Friday in New York: open
    assert WEEKDAYS_9_TO_8.next_open(friday_late, "America/New_York") == friday_late
    saturday = datetime(2030, 1, 12, 12, tzinfo=UTC)
    assert WEEKDAYS_9_TO_8.next_open(saturday, "America/New_York") == datetime(2030, 1, 14, 14, tzinfo=UTC)


def test_a_numbers_zone_comes_from_phonenumbers_when_it_names_one():
    assert zone_of_number("+12125550100") == "America/New_York"
    assert zone_of_number("+919812345678") == "Asia/Calcutta"
    assert zone_of_number("+15551230000") is None  # "Etc/Unknown"


@pytest.mark.parametrize("days, start, end, message", [
    ([], "09:00", "17:00", "at least one"),
    ([0], "09:00", "17:00", "ISO weekdays"),
    ([1], "9:00", "17:00", "HH:MM"),
    ([1], "09:60", "17:00", "HH:MM"),
    ([1], "24:01", "17:00", "HH:MM"),
    ([1], "09:00", "09:00", "must differ"),
])
def test_bad_windows_are_refused_with_a_reason(days, start, end, message):
    with pytest.raises(ValueError, match=message):
        Window.of(days, start, end)


def test_clock_texts():
    assert parse_clock("00:00") == 0 and parse_clock("24:00") == 1440 and parse_clock("09:30") == 570


@pytest.mark.parametrize("status, end_reason, outcome", [
    ("completed", "completed", "completed"),
    ("missed", "no_answer", "no_answer"),
    ("failed", "busy", "busy"),
    ("failed", "rejected", "failed"),
    ("failed", "failed", "failed"),
    ("failed", "canceled", "failed"),
])
def test_outcomes_from_the_calls_end(status, end_reason, outcome):
    assert outcome_of(status, end_reason, status == "completed") == outcome


def test_retries_follow_the_backoff_until_the_attempts_run_out():
    now = datetime(2030, 1, 7, 12, tzinfo=UTC)
    step = after_attempt("busy", 1, 3, 60, "running", now)
    assert step.state == "pending" and (step.next_attempt_at - now).total_seconds() == 60
    assert after_attempt("busy", 3, 3, 60, "running", now).state == "busy"
    assert after_attempt("completed", 1, 3, 60, "running", now).state == "completed"
    assert after_attempt("no_answer", 1, 3, 60, "stopped", now).state == "no_answer"  # a stop ends retries
    assert after_attempt("no_answer", 1, 3, 60, "paused", now).state == "pending"  # a pause keeps them
