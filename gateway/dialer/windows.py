"""Calling windows, without IO: when a contact may be called, in its own time zone.

A window is a set of ISO weekdays (1 Monday … 7 Sunday) and a daily span
``start``–``end`` (``"HH:MM"``, ``end`` exclusive, ``"24:00"`` for midnight). A span whose
end is before its start runs overnight: ``21:00``–``02:00`` on Friday takes in Saturday
01:30 (the day is the one it started on). A contact's zone is the one ``phonenumbers``
places its number in when it names exactly one; else the campaign's.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

_UNKNOWN_ZONE = "Etc/Unknown"


def check_zone(name: str) -> str:
    """An IANA time zone name, or ``ValueError``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name such as Europe/Paris") from None
    return name


def parse_clock(text: str) -> int:
    """``"09:30"`` → minutes after midnight (``"24:00"`` → 1440), or ``ValueError``."""
    hours, sep, minutes = (text or "").partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and (hours + minutes).isdigit()):
        raise ValueError(f"time {text!r} is invalid; expected HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"time {text!r} is invalid; expected HH:MM between 00:00 and 24:00")
    return value


@dataclass(frozen=True)
class Window:
    days: frozenset[int]
    start: int  # minutes after midnight
    end: int

    @classmethod
    def of(cls, days, start: str, end: str) -> Window:
        days = frozenset(days or ())
        if not days or any(not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7 for d in days):
            raise ValueError("calling days are ISO weekdays, 1 (Monday) to 7 (Sunday), at least one")
        begin, finish = parse_clock(start), parse_clock(end)
        if begin == finish:
            raise ValueError("a calling window's start and end must differ")
        return cls(days, begin, finish)

    def open_at(self, local: datetime) -> bool:
        """Whether a call may start at the local time ``local``."""
        minute = local.hour * 60 + local.minute
        day = local.isoweekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        previous = (day - 2) % 7 + 1
        return (day in self.days and minute >= self.start) or (previous in self.days and minute < self.end)

    def next_open(self, now: datetime, zone: str) -> datetime:
        """The first instant at or after ``now`` (aware, any zone) when the window is open
        in ``zone``; returned in UTC."""
        tz = ZoneInfo(zone)
        local = now.astimezone(tz)
        if self.open_at(local):
            return now.astimezone(timezone.utc)
        for offset in range(0, 9):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, time(self.start // 60, self.start % 60), tz)
            if opening > local and day.isoweekday() in self.days and self.open_at(opening):
                return opening.astimezone(timezone.utc)
        raise ValueError("the calling window never opens")  # days is never empty: unreachable


def zone_of_number(number: str) -> str | None:
    """The one time zone phonenumbers places an E.164 number in, or None."""
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return None
    if len(zones) != 1 or zones[0] == _UNKNOWN_ZONE:
        return None
    try:
        return check_zone(zones[0])
    except ValueError:
        return None
