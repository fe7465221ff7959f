"""Charges, credits and balance checks over the database.

Call charges are written by :func:`billing_hook`, a ``CallController.transaction_hooks``
entry: it runs inside the transaction that writes a call's final status, so a call is
never final without its charge, nor charged without being final. A charge is an
``INSERT … ON CONFLICT (call_uuid) DO NOTHING``: if another process (or a replayed batch)
charged the call already, nothing happens, and the batch is not rolled back.

What is billed: outbound calls that were answered (``billsec`` > 0) and whose number has
a rate on the account (``CallRate``, longest prefix). Unanswered calls, inbound calls and
numbers without a rate cost nothing and write no entry.
"""
from __future__ import annotations

import logging
from decimal import Decimal
from typing import Iterable

from gateway.billing.rates import QUANTUM, Rate, best_rate
from gateway.domain import FINAL
from gateway.models import Account, Call, CallRate, LedgerEntry, database, utcnow

logger = logging.getLogger(__name__)


def rates_of(account_ids: Iterable[int]) -> dict[int, list[Rate]]:
    ids = sorted(set(account_ids))
    found: dict[int, list[Rate]] = {account_id: [] for account_id in ids}
    if not ids:
        return found
    query = CallRate.select(CallRate.account, CallRate.prefix, CallRate.per_minute, CallRate.pulse_sec).where(
        CallRate.account.in_(ids))
    for account_id, prefix, per_minute, pulse_sec in query.tuples():
        found[account_id].append(Rate(prefix, CallRate.per_minute.python_value(per_minute), pulse_sec))
    return found


def rate_for(account_id: int, number: str) -> Rate | None:
    return best_rate(rates_of([account_id])[account_id], number)


def required_balance(account_id: int, number: str) -> Decimal:
    """What the balance must at least hold to place a call to ``number``: one pulse at its
    rate (nothing when no rate applies)."""
    rate = rate_for(account_id, number)
    return rate.first_pulse if rate is not None else Decimal("0")


def can_afford(account: Account, number: str) -> bool:
    """Whether the balance covers a new call to ``number``: it must be positive and hold at
    least one pulse at the number's rate. The balance is read fresh."""
    balance = Account.select(Account.balance).where(Account.id == account.id).scalar()
    balance = Account.balance.python_value(balance) if balance is not None else Decimal("0")
    return balance > 0 and balance >= required_balance(account.id, number)


def _apply(account_id: int, amount: Decimal) -> Decimal:
    """Add ``amount`` to the balance in place (no read-modify-write race); the new balance."""
    query = (Account.update(balance=Account.balance + amount)
             .where(Account.id == account_id)
             .returning(Account.balance))
    rows = list(query.execute())
    if not rows:
        raise LookupError(f"no account {account_id}")
    return rows[0].balance


def charge(call_uuid: str, account_id: int, billsec: int, rate: Rate, description: str | None = None
           ) -> LedgerEntry | None:
    """Charge one call (inside the caller's transaction); None if it was charged already
    or costs nothing."""
    cost = rate.cost(billsec)
    if cost <= 0:
        return None
    inserted = list(
        LedgerEntry.insert(
            account=account_id, kind="call", amount=-cost, call_uuid=call_uuid, billsec=billsec,
            per_minute=rate.per_minute, pulse_sec=rate.pulse_sec, description=description, created_at=utcnow(),
        )
        .on_conflict(conflict_target=[LedgerEntry.call_uuid], action="IGNORE")
        .returning(LedgerEntry.id)
        .execute()
    )
    if not inserted:
        return None
    entry_id = inserted[0].id
    balance = _apply(account_id, -cost)
    LedgerEntry.update(balance_after=balance).where(LedgerEntry.id == entry_id).execute()
    return LedgerEntry.get_by_id(entry_id)


def billing_hook(changes: list) -> None:
    """``CallController.transaction_hooks`` entry: charge the calls of a batch that ended
    answered. Two queries to find calls and rates, then three statements per charge."""
    ended = {call_uuid: transition for call_uuid, _from, _seq, transition in changes
             if transition.to_status in FINAL and (transition.billsec or 0) > 0}
    if not ended:
        return
    calls = list(Call.select(Call.uuid, Call.account, Call.to_number, Call.direction, Call.surface)
                 .where(Call.uuid.in_(sorted(ended)) & (Call.direction == "outbound")))
    if not calls:
        return
    rates = rates_of(call.account_id for call in calls)
    for call in calls:
        rate = best_rate(rates.get(call.account_id, ()), call.to_number)
        if rate is None:
            continue
        billsec = ended[call.uuid].billsec or 0
        charge(call.uuid, call.account_id, billsec, rate,
               description=f"{billsec} s to {call.to_number}")


def credit(account: Account | int, amount: Decimal, *, kind: str = "credit",
           description: str | None = None) -> LedgerEntry:
    """Add ``amount`` (negative for a debit adjustment) to the balance, with its entry."""
    account_id = account if isinstance(account, int) else account.id
    amount = Decimal(amount).quantize(QUANTUM)
    if kind not in ("credit", "adjustment"):
        raise ValueError("kind must be credit or adjustment")
    if kind == "credit" and amount <= 0:
        raise ValueError("a credit must be a positive amount")
    if amount == 0:
        raise ValueError("the amount must not be zero")
    with database.atomic():
        balance = _apply(account_id, amount)
        return LedgerEntry.create(account=account_id, kind=kind, amount=amount, balance_after=balance,
                                  description=description, created_at=utcnow())


def entries(account: Account | int, limit: int = 50) -> list[LedgerEntry]:
    account_id = account if isinstance(account, int) else account.id
    return list(LedgerEntry.select().where(LedgerEntry.account == account_id)
                .order_by(LedgerEntry.id.desc()).limit(limit))
