"""Per-day call counts, so that listing calls (the public API's ``GET /calls``) counts and
seeks without scanning history.

A list answer needs ``pagination.total`` and, for page *n*, the rows after the first
``(n - 1) * per_page``. Counting an account's calls, or skipping them, row by row costs
what the account's history holds: 80-130 ms per million rows on either database, growing
for ever. Instead, once a UTC day is *settled* (``SETTLE_DAYS`` old: no call lives that
long), the account's calls of that day are counted once, by direction and status, into
``CallDayCount`` rows, and ``CallCountMark`` remembers up to which day that was done. A
request then splits its time range into *segments*, newest first:

* the unsettled recent days, and the partial days at the edges of ``from``/``to``:
  counted live, with an index range scan bounded by a couple of days of calls;
* every settled whole day in between: one ``CallDayCount`` sum per day.

The total is the sum of the segments; page *n* starts in the segment that holds its
offset, and the query skips only that segment's rows (``created_at < segment end``,
``OFFSET`` within it). The cost is bounded by the number of days and one day's calls, not
by the number of calls.

The counts stay exact:

* rolling up runs in one transaction that first locks the account's mark row (``FOR
  UPDATE`` on PostgreSQL; SQLite's single writer), so two processes never count a day
  twice;
* a call of a settled day that still changes status (a call stuck for days and closed by
  a reconcile) is moved between the day's status counts by :func:`rollup_hook`, a
  ``CallController.transaction_hooks`` entry, inside the transaction that changes the
  status, after locking the same mark row: a concurrent roll-up either counted the old
  status and is adjusted after it commits, or runs after the change and counts the new one;
* calls are never deleted, and ``created_at`` is the moment the row is written, so no row
  appears in a settled day later.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from peewee import EXCLUDED, PostgresqlDatabase, fn

from gateway.models import Call, CallCountMark, CallDayCount, database, utcnow

SETTLE_DAYS = 2
_EPOCH = date(1970, 1, 1)
_CHUNK = 200


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def day_of(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


def settled_before(now: datetime) -> date:
    """Days before this one are settled."""
    return day_of(now) - timedelta(days=SETTLE_DAYS)


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def _locked_mark(account_id: int) -> CallCountMark | None:
    query = CallCountMark.select().where(CallCountMark.account == account_id)
    if _postgres():
        query = query.for_update()
    return query.get_or_none()


def ensure(account_id: int, now: datetime | None = None) -> date:
    """Roll the account's settled days up (if any are new); the day the rolled-up counts
    end before."""
    target = settled_before(now or utcnow())
    mark = CallCountMark.get_or_none(CallCountMark.account == account_id)
    if mark is not None and mark.rolled_until >= target:
        return mark.rolled_until
    db = database.obj
    atomic = db.atomic() if _postgres() else db.atomic(lock_type="IMMEDIATE")
    with atomic:
        CallCountMark.insert(account=account_id, rolled_until=_EPOCH).on_conflict_ignore().execute()
        mark = _locked_mark(account_id)
        start = mark.rolled_until
        if start >= target:
            return start
        day = fn.DATE(Call.created_at)
        rows = (Call.select(day, Call.direction, Call.status, fn.COUNT(Call.uuid))
                .where((Call.account == account_id) & (Call.created_at >= day_start(start))
                       & (Call.created_at < day_start(target)))
                .group_by(day, Call.direction, Call.status)
                .tuples())
        counts = [{"account": account_id, "day": _as_date(d), "direction": direction, "status": status, "n": n}
                  for d, direction, status, n in rows]
        for first in range(0, len(counts), _CHUNK):
            _upsert(counts[first:first + _CHUNK])
        CallCountMark.update(rolled_until=target).where(CallCountMark.account == account_id).execute()
    return target


def _upsert(rows: list[dict]) -> None:
    """Insert day counts; a row that exists (never expected: days are rolled up once)
    takes the new count."""
    (CallDayCount.insert_many(rows)
     .on_conflict(conflict_target=[CallDayCount.account, CallDayCount.day, CallDayCount.direction,
                                   CallDayCount.status],
                  update={CallDayCount.n: EXCLUDED.n})
     .execute())


def _adjust(account_id: int, day: date, direction: str, status: str, delta: int) -> None:
    (CallDayCount.insert(account=account_id, day=day, direction=direction, status=status, n=delta)
     .on_conflict(conflict_target=[CallDayCount.account, CallDayCount.day, CallDayCount.direction,
                                   CallDayCount.status],
                  update={CallDayCount.n: CallDayCount.n + delta})
     .execute())


def rollup_hook(changes: list) -> None:
    """``CallController.transaction_hooks`` entry: move a settled day's call between its
    status counts when its status changes. One primary-key query per batch; nothing more
    unless a call of a settled day is in it (rare)."""
    if not changes:
        return
    cutoff = day_start(settled_before(utcnow()))
    uuids = sorted({change[0] for change in changes})
    old = {call.uuid: call for call in
           Call.select(Call.uuid, Call.account, Call.direction, Call.created_at)
           .where(Call.uuid.in_(uuids) & (Call.created_at < cutoff))}
    if not old:
        return
    for account_id in sorted({call.account_id for call in old.values()}):
        mark = _locked_mark(account_id)
        if mark is None:
            continue
        for call_uuid, from_status, _seq, transition in changes:
            call = old.get(call_uuid)
            if call is None or call.account_id != account_id:
                continue
            day = day_of(call.created_at)
            if day >= mark.rolled_until or from_status == transition.to_status.value:
                continue
            _adjust(account_id, day, call.direction, from_status, -1)
            _adjust(account_id, day, call.direction, transition.to_status.value, +1)


@dataclass(frozen=True)
class Segment:
    """``count`` matching calls created before ``upper`` (None: no bound) and after the
    next segment's ``upper``."""

    upper: datetime | None
    count: int


def segments(account_id: int, base, lo: datetime | None, hi: datetime | None, *, direction: str | None,
             status: str | None, now: datetime | None = None) -> list[Segment]:
    """The time range ``[lo, hi)`` of the account's calls matching ``base`` (a query with
    the direction/status filters), newest segment first (see the module docstring)."""
    rolled = day_start(ensure(account_id, now))

    def live(a: datetime | None, b: datetime | None) -> int:
        query = base
        if a is not None:
            query = query.where(Call.created_at >= a)
        if b is not None:
            query = query.where(Call.created_at < b)
        return query.count()

    found: list[Segment] = []
    if hi is None or hi > rolled:  # the unsettled days (and everything, if lo is recent)
        if lo is not None and lo >= rolled:
            return [Segment(hi, live(lo, hi))]
        found.append(Segment(hi, live(rolled, hi)))
        upper = rolled
    else:
        upper = hi
    if lo is not None and upper <= lo:
        return found
    top_day = day_of(upper)
    if upper != day_start(top_day):  # the partial day under ``to``
        bottom = max(day_start(top_day), lo) if lo is not None else day_start(top_day)
        found.append(Segment(upper, live(bottom, upper)))
        upper = bottom
        if lo is not None and upper <= lo:
            return found
    first_day = None
    if lo is not None:
        first_day = day_of(lo) if lo == day_start(day_of(lo)) else day_of(lo) + timedelta(days=1)
    days = (CallDayCount.select(CallDayCount.day, fn.SUM(CallDayCount.n))
            .where((CallDayCount.account == account_id) & (CallDayCount.day < day_of(upper))))
    if first_day is not None:
        days = days.where(CallDayCount.day >= first_day)
    if direction:
        days = days.where(CallDayCount.direction == direction)
    if status:
        days = days.where(CallDayCount.status == status)
    for day, count in days.group_by(CallDayCount.day).order_by(CallDayCount.day.desc()).tuples():
        if count:
            found.append(Segment(day_start(_as_date(day) + timedelta(days=1)), int(count)))
    if lo is not None and first_day is not None and lo < day_start(first_day):  # the partial day over ``from``
        bottom_upper = min(upper, day_start(first_day))
        if lo < bottom_upper:
            found.append(Segment(bottom_upper, live(lo, bottom_upper)))
    return found

