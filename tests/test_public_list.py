"""``GET /calls``: the call object, every filter of the contract's table, pagination, the
closed status and end_reason sets, isolation between accounts; SQLite and PostgreSQL."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth
from gateway.models import CALL_STATUSES, END_REASONS, Call, PublicRun

T0 = datetime(2026, 6, 4, 16, 12, 8, tzinfo=timezone.utc)  # 21:42:08 IST


def make_call(account, minutes=0, **fields):
    values = {"uuid": str(uuid.uuid4()), "account": account, "direction": "outbound", "from_number": "+917965318581",
              "to_number": "+919812345678", "node": "fs1", "created_at": T0 + timedelta(minutes=minutes), **fields}
    return Call.create(**values)


def listing(client, pair, **query):
    response = client.get(f"{BASE}/calls", query_string=query, headers=auth(pair))
    return response


def ids(response):
    return [c["call_id"] for c in response.json["data"]]


def test_call_object_as_the_contract_shows_it(client, pair, india):
    run = PublicRun.create(account=india, type="audio_blast", to_number="+919812345678")
    call = make_call(india, campaign_id=run.id, reference_id="order-99213", status="completed",
                     end_reason="completed", billsec=42, duration_sec=50, surface="public")
    PublicRun.update(call_uuid=call.uuid).where(PublicRun.id == run.id).execute()
    inbound = make_call(india, minutes=1, direction="inbound", from_number="09812345678", to_number="+917965318581",
                        status="in_progress")
    response = listing(client, pair)
    assert response.status_code == 200
    body = response.json
    assert (body["status"], body["code"]) == ("success", 200)
    assert body["pagination"] == {"page": 1, "per_page": 50, "total": 2, "total_pages": 1}
    assert body["data"] == [
        {"unique_id": inbound.uuid, "call_id": inbound.uuid, "direction": "inbound", "from_number": "09812345678",
         "to_number": "+917965318581", "status": "in_progress", "end_reason": None, "duration_sec": None,
         "campaign_id": None, "reference_id": None, "created_at": "2026-06-04T21:43:08+05:30"},
        {"unique_id": f"run_{run.id}", "call_id": call.uuid, "direction": "outbound",
         "from_number": "+917965318581", "to_number": "+919812345678", "status": "completed",
         "end_reason": "completed", "duration_sec": 42, "campaign_id": run.id, "reference_id": "order-99213",
         "created_at": "2026-06-04T21:42:08+05:30"},
    ]


def test_every_filter(client, pair, other_pair, india, other):
    made = {}
    for i, (status, end_reason) in enumerate([("queued", None), ("ringing", None), ("in_progress", None),
                                              ("completed", "completed"), ("missed", "no_answer"),
                                              ("failed", "busy"), ("failed", "rejected"), ("missed", "canceled"),
                                              ("failed", "failed")]):
        made[i] = make_call(india, minutes=i * 60, status=status, end_reason=end_reason,
                            to_number=f"+9198123456{i:02d}")
    inbound = make_call(india, minutes=-60, direction="inbound", from_number="09812345600",
                        to_number="+917965318581", status="completed", end_reason="completed")
    make_call(other, status="completed", to_number="+919812345600")  # another account's: never listed
    everything = listing(client, pair)
    assert everything.json["pagination"]["total"] == 10
    assert set(c["status"] for c in everything.json["data"]) <= set(CALL_STATUSES)
    assert set(c["end_reason"] for c in everything.json["data"]) <= set(END_REASONS) | {None}
    # newest first
    assert ids(everything) == [made[i].uuid for i in range(8, -1, -1)] + [inbound.uuid]

    assert ids(listing(client, pair, direction="inbound")) == [inbound.uuid]
    assert len(ids(listing(client, pair, direction="outbound"))) == 9
    for status in CALL_STATUSES:
        got = listing(client, pair, status=status)
        assert got.status_code == 200
        assert {c["status"] for c in got.json["data"]} <= {status}, status
    assert len(ids(listing(client, pair, status="failed"))) == 3
    assert len(ids(listing(client, pair, status="missed"))) == 2
    # from (inclusive) / to (exclusive): timestamps with offsets, Z, none (the account's zone), dates.
    assert ids(listing(client, pair, **{"from": "2026-06-04T23:42:08+05:30"})) == [made[i].uuid for i in range(8, 1, -1)]
    assert ids(listing(client, pair, to="2026-06-04T18:12:08Z")) == [made[1].uuid, made[0].uuid, inbound.uuid]
    assert ids(listing(client, pair, **{"from": "2026-06-04T21:42:08", "to": "2026-06-04T22:42:08"})) == [
        made[0].uuid]
    assert len(ids(listing(client, pair, **{"from": "2026-06-05"}))) == 6  # from midnight IST
    assert len(ids(listing(client, pair, to="2026-06-05"))) == 4
    # An unencoded "+" of the offset arrives as a space.
    assert ids(listing(client, pair, to="2026-06-04T23:42:08 05:30")) == ids(listing(client, pair, to="2026-06-04T18:12:08Z"))
    # number: as caller or recipient, in any form.
    for form in ("9812345600", "+919812345600", "919812345600", "09812345600"):
        assert sorted(ids(listing(client, pair, number=form))) == sorted([made[0].uuid, inbound.uuid]), form
    combined = listing(client, pair, direction="outbound", status="failed", **{"from": "2026-06-05"})
    assert len(ids(combined)) == 3 and combined.json["pagination"]["total"] == 3
    assert ids(listing(client, pair, reference_id="nothing")) == []
    # The other account sees only its own.
    assert listing(client, other_pair).json["pagination"]["total"] == 1

    bad = [
        ({"direction": "sideways"}, "direction must be inbound or outbound."),
        ({"status": "answered"}, "status must be one of queued, ringing, in_progress, completed, missed, failed."),
        ({"from": "yesterday"}, "from must be an ISO 8601 date or timestamp."),
        ({"to": "2026-13-01"}, "to must be an ISO 8601 date or timestamp."),
        ({"number": "12"}, "number must be a valid phone number."),
        ({"page": "0"}, "page must be a whole number of 1 or more."),
        ({"page": "two"}, "page must be a whole number of 1 or more."),
        ({"per_page": "0"}, "per_page must be a whole number from 1 to 100."),
    ]
    for query, details in bad:
        response = listing(client, pair, **query)
        assert (response.status_code, response.json["details"]) == (400, details), query


def test_bounds_at_the_ends_of_the_calendar(client, pair, india):
    """Dates of year 1 and 9999 are ISO 8601 dates (the document's ``format: date``): they
    bound the list like any other, where moving them to UTC would leave the calendar."""
    call = make_call(india)
    for query in ({"from": "0001-01-01"}, {"to": "9999-12-31"},
                  {"from": "0001-01-01T00:00:00+23:59", "to": "9999-12-31T23:59:59-23:59"}):
        assert ids(listing(client, pair, **query)) == [call.uuid], query
    for query in ({"to": "0001-01-01"}, {"from": "9999-12-31"}):
        response = listing(client, pair, **query)
        assert (response.status_code, ids(response)) == (200, []), query


def test_pagination(client, pair, india):
    made = [make_call(india, minutes=i) for i in range(7)]
    newest_first = [c.uuid for c in reversed(made)]
    pages = [listing(client, pair, per_page=3, page=p).json for p in (1, 2, 3, 4)]
    assert [ids_ for ids_ in ([c["call_id"] for c in p["data"]] for p in pages)] == [
        newest_first[0:3], newest_first[3:6], newest_first[6:7], []]
    assert pages[0]["pagination"] == {"page": 1, "per_page": 3, "total": 7, "total_pages": 3}
    assert pages[3]["pagination"] == {"page": 4, "per_page": 3, "total": 7, "total_pages": 3}
    # per_page is capped at 100 and says so.
    assert listing(client, pair, per_page=500).json["pagination"]["per_page"] == 100
    # Calls created in the same instant still page without repeats or gaps.
    same = [make_call(india, minutes=100) for _ in range(5)]
    seen = []
    for page in (1, 2, 3, 4):
        seen += [c["call_id"] for c in listing(client, pair, per_page=2, page=page,
                                               **{"from": "2026-06-04T17:30:00Z"}).json["data"]]
    assert sorted(seen) == sorted(c.uuid for c in same)


def test_deep_pages_use_the_two_step_fetch(client, pair, india):
    from gateway.api.public import listing as listing_module

    made = [make_call(india, minutes=i) for i in range(12)]
    newest_first = [c.uuid for c in reversed(made)]
    original = listing_module.DEFERRED_FROM
    listing_module.DEFERRED_FROM = 2
    try:
        assert ids(listing(client, pair, per_page=5, page=2)) == newest_first[5:10]
        assert ids(listing(client, pair, per_page=5, page=3)) == newest_first[10:12]
    finally:
        listing_module.DEFERRED_FROM = original


def test_totals_and_pages_over_rolled_up_days_match_a_plain_scan(client, gw, pair, india, other):
    """Calls over twelve past days (rolled up) and the last two (live); every combination of
    filters, edges that cut days in two, and pages across segments answer as a plain
    filter-sort-slice of the rows would."""
    import random

    from gateway.calls import day_counts as rollups
    from gateway.calls import store
    from gateway.calls.states import EndReason, Status, Transition
    from gateway.models import CallDayCount, CallCountMark, utcnow

    rnd = random.Random(7)
    now = utcnow().replace(microsecond=0)
    statuses = ["completed", "missed", "failed", "in_progress"]
    made = []
    for i in range(240):
        at = now - timedelta(days=rnd.uniform(0, 14))
        made.append(Call.create(uuid=str(uuid.uuid4()), account=india, direction=rnd.choice(["outbound", "inbound"]),
                                from_number="+917965318581", to_number="+919812345678", node="fs1",
                                status=rnd.choice(statuses), created_at=at))
    for i in range(30):  # another account's, on the same days
        make_call(other, minutes=0, created_at=now - timedelta(days=rnd.uniform(0, 14)))
    twin = made[5].created_at  # two calls in the same instant, on a settled day
    made.append(Call.create(uuid=str(uuid.uuid4()), account=india, direction="outbound",
                            from_number="+917965318581", to_number="+919812345678", node="fs1",
                            status="completed", created_at=twin))

    def expected(direction=None, status=None, lo=None, hi=None):
        rows = [c for c in made if (direction is None or c.direction == direction)
                and (status is None or Call.get_by_id(c.uuid).status == status)
                and (lo is None or c.created_at >= lo) and (hi is None or c.created_at < hi)]
        rows.sort(key=lambda c: (c.created_at, c.uuid), reverse=True)
        return [c.uuid for c in rows]

    def check(per_page=20, **kwargs):
        query = {k: v for k, v in kwargs.items() if k in ("direction", "status")}
        lo, hi = kwargs.get("lo"), kwargs.get("hi")
        if lo is not None:
            query["from"] = lo.isoformat()
        if hi is not None:
            query["to"] = hi.isoformat()
        want = expected(**kwargs)
        first = listing(client, pair, per_page=per_page, **query).json
        assert first["pagination"]["total"] == len(want), kwargs
        pages = first["pagination"]["total_pages"]
        got = []
        for page in range(1, pages + 1):
            got += ids(listing(client, pair, per_page=per_page, page=page, **query))
        assert got == want, kwargs

    cut = now - timedelta(days=5, hours=7, minutes=13)
    ranges = [(None, None), (cut, None), (None, cut), (now - timedelta(days=9, hours=3), cut),
              (now - timedelta(hours=30), None), (cut, cut + timedelta(hours=2)),
              (rollups.day_start(rollups.day_of(cut)), rollups.day_start(rollups.day_of(cut)) + timedelta(days=3))]
    for lo, hi in ranges:
        check(lo=lo, hi=hi)
    for direction in ("inbound", "outbound"):
        check(direction=direction, lo=ranges[3][0], hi=ranges[3][1])
    for status in statuses:
        check(status=status)
    check(direction="inbound", status="missed", per_page=3)
    # Days were rolled up once, and only settled ones.
    mark = CallCountMark.get(CallCountMark.account == india.id)
    assert mark.rolled_until == rollups.settled_before(now)
    assert CallDayCount.select().where(CallDayCount.account == india.id).count() > 0
    assert max(d.day for d in CallDayCount.select()) < mark.rolled_until
    # A call of a settled day that ends late moves between the day's status counts.
    stuck = next(c for c in made if c.created_at < rollups.day_start(mark.rolled_until)
                 and Call.get_by_id(c.uuid).status == "in_progress")
    store.apply([(stuck.uuid, "in_progress", 1, Transition(Status.COMPLETED, now, "test",
                                                          end_reason=EndReason.COMPLETED, billsec=5))],
                hooks=gw.controller.transaction_hooks)
    check(status="in_progress")
    check(status="completed")
    check()
