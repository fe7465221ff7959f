"""Send and verify voice verification codes: the rules, over the database.

Send
----
``send`` stores the request (the code only as a salted HMAC), places the call and keeps
the code and the words to speak in this process's memory until the call is answered (the
database never holds the code; see ``codes``; the call plays it from audio, see
``readout``). A number can receive at most
``SEND_LIMIT`` verification calls from one account per ``SEND_WINDOW`` seconds; past
that, ``Throttled`` (HTTP 429). The count and the new request are one transaction,
serialised per (account, number) (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so concurrent sends from several processes cannot slip past the limit.

Verify
------
By ``request_id``, or by number: the most recent pending request for it (if none is
pending, the most recent one, so that the answer says why: expired, used, too many
attempts). Checked in this order:

============================================  ====  =====================================
situation                                     HTTP  details
============================================  ====  =====================================
no code, or neither request_id nor number     400   A code and either request_id or
                                                    number are required.
no such request for the account               400   Verification failed.
the verification call failed or was missed    400   Verification failed.
already verified                              400   This code has already been used.
attempt cap reached                           400   Too many incorrect attempts.
expired (``ttl`` passed)                      400   This code has expired.
the number's guess cap reached                429   Too many incorrect codes for this
                                                    number. … (+ Retry-After)
wrong code (the attempt is counted)           401   Incorrect code.  (+ attempts_left)
right code (the attempt is counted)           200   Code verified.
============================================  ====  =====================================

Each evaluated attempt, right or wrong, increments ``attempts`` with one conditional
``UPDATE … WHERE attempts < max_attempts``, so concurrent verifies can never exceed the
cap; the wrong attempt that reaches it marks the request ``failed``.

Guess cap per number: a request's own cap alone would let fresh codes bring fresh
attempts (3 sends of 10 attempts every 10 minutes, about 4,320 guesses a day). So every
wrong code is also noted for the number (``OtpGuess``, per account, across all its
requests), and once ``GUESS_LIMIT`` wrong codes were given for it in the last
``GUESS_WINDOW`` seconds, no code is checked for it, the right one included, until the
oldest of them leaves the window: at most 20 guesses a day on one number (a 0.2 % chance
against a 4-digit code). A code also lives at most ``MAX_TTL`` seconds. The count, the
attempt and the note are one transaction serialised per (account, number), as for send.

Status (``GET /calls/<request_id>``): ``verified``; ``failed`` (cap reached, or the call
could not be placed or was not answered); ``expired``; else ``pending``.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
import uuid as uuidlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import JOIN, PostgresqlDatabase

from gateway.calls.placement import PlacementFailed, originate, prepare
from gateway.calls.scripts import SpeakCode
from gateway.domain import FINAL, Surface
from gateway.models import Account, Call, OtpGuess, OtpRequest, database, utcnow
from gateway.otp import codes
from gateway.uuids import parse_uuid

logger = logging.getLogger(__name__)

DEFAULT_TTL = 600
MIN_TTL, MAX_TTL = 30, 1_800
DEFAULT_MAX_ATTEMPTS = 3
MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 10
MAX_MESSAGE_LENGTH = 500
#: Verification calls one account may send one number per window.
SEND_LIMIT = 3
SEND_WINDOW = 600
#: Wrong codes one account may submit for one number per (sliding) window, across requests.
GUESS_LIMIT = 20
GUESS_WINDOW = 86_400

VERIFIED = "Code verified."
INCORRECT = "Incorrect code."
EXPIRED = "This code has expired."
TOO_MANY = "Too many incorrect attempts."
USED = "This code has already been used."
NOT_FOUND = "Verification failed."
MISSING = "A code and either request_id or number are required."
THROTTLED = "Too many verification calls to this number. Please wait a few minutes before sending another code."
GUESSES_CAPPED = "Too many incorrect codes for this number. Please wait before trying again."

_CALL_FAILED = ("failed", "missed")


class Throttled(Exception):
    """Too many verification calls to one number in the window."""


@dataclass(frozen=True)
class SendRequest:
    to_number: str  # E.164, checked
    from_number: str  # E.164, checked
    code: str | None = None  # checked with codes.is_code
    length: int = codes.DEFAULT_LENGTH
    ttl: int = DEFAULT_TTL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    message: str | None = None  # checked: contains {code}
    reference_id: str | None = None


@dataclass(frozen=True)
class VerifyOutcome:
    http: int
    details: str
    request: OtpRequest | None = None
    verified: bool = False
    attempts_left: int | None = None
    retry_after: int | None = None  # seconds, with the guess cap's 429


#: How long a placed verification call's code is kept for its answer (the originate
#: timeout is a minute; a call not answered by then never will be).
SPEECH_KEEP = 900.0


@dataclass(frozen=True)
class Speech:
    """What one verification call says: ``parts`` (the message's words) with ``code``
    played between each two of them."""

    code: str
    parts: tuple[str, ...]


class SpeechBook:
    """What each verification call will say, kept in memory only (it holds the code),
    by call uuid, until the call is answered, ends, or ``keep`` seconds have passed."""

    def __init__(self, keep: float = SPEECH_KEEP) -> None:
        self.keep = keep
        self._texts: OrderedDict[str, tuple[Speech, float]] = OrderedDict()

    def put(self, call_uuid: str, speech: Speech) -> None:
        self._expire()
        self._texts[call_uuid] = (speech, time.monotonic() + self.keep)

    def take(self, call_uuid: str) -> Speech | None:
        self._expire()
        entry = self._texts.pop(call_uuid, None)
        return entry[0] if entry else None

    def drop(self, call_uuid: str) -> None:
        self._texts.pop(call_uuid, None)

    def on_transition(self, call_uuid: str, transition) -> None:
        """Controller listener: a call that ended will never speak its text."""
        if transition.to_status in FINAL:
            self._texts.pop(call_uuid, None)

    def __len__(self) -> int:
        return len(self._texts)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._texts:
            first = next(iter(self._texts))
            if self._texts[first][1] > now:
                break
            self._texts.pop(first)


#: This process's book (a module-level registry: any ScriptRunner of the process reads it).
SPEECH = SpeechBook()


@contextmanager
def _locked(account_id: int, number: str):
    """A transaction in which no other send to this (account, number) runs: a transaction
    advisory lock on PostgreSQL; on SQLite, the write lock taken at BEGIN."""
    db = database.obj
    if isinstance(db, PostgresqlDatabase):
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"otp:{account_id}:{number}",))
            yield
    else:
        with db.atomic(lock_type="IMMEDIATE"):
            yield


def recent_sends(account_id: int, number: str, now: datetime) -> int:
    return (OtpRequest.select()
            .where((OtpRequest.account == account_id) & (OtpRequest.to_number == number)
                   & (OtpRequest.created_at > now - timedelta(seconds=SEND_WINDOW)))
            .count())


def send(controller, account: Account, request: SendRequest, speech: SpeechBook = SPEECH) -> OtpRequest:
    """Store a verification request and place its call; ``Throttled`` or ``PlacementFailed``."""
    code = request.code or codes.generate(request.length)
    salt = codes.new_salt()
    now = utcnow()
    request_id = str(uuidlib.uuid4())
    created: dict = {}

    def create(call_uuid: str) -> None:
        if recent_sends(account.id, request.to_number, now) >= SEND_LIMIT:
            raise Throttled()
        created["otp"] = OtpRequest.create(
            id=request_id, account=account.id, to_number=request.to_number, code_hash=codes.hash_code(code, salt),
            salt=salt, code_length=len(code), status="pending", attempts=0, max_attempts=request.max_attempts,
            expires_at=now + timedelta(seconds=request.ttl), call_uuid=call_uuid,
            reference_id=request.reference_id, created_at=now,
        )
        speech.put(call_uuid, Speech(code, tuple(codes.message_parts(request.message))))
        return None  # not a run

    with _locked(account.id, request.to_number):  # the throttle's count and the new rows
        call, node = prepare(controller, account, request.to_number, request.from_number,
                             surface=Surface.PUBLIC.value, before=create, reference_id=request.reference_id)
    otp = created["otp"]
    try:
        originate(controller, call, node)  # after the commit: the controller updates the row
    except PlacementFailed:
        speech.drop(call.uuid)
        OtpRequest.update(status="failed").where(OtpRequest.id == otp.id).execute()
        raise
    return otp


def find(account_id: int, request_id: str) -> OtpRequest | None:
    canonical = parse_uuid(request_id)
    if canonical is None:
        return None
    return OtpRequest.get_or_none((OtpRequest.id == canonical) & (OtpRequest.account == account_id))


def call_status_of(otp: OtpRequest) -> str | None:
    if otp.call_uuid is None:
        return None
    return Call.select(Call.status).where(Call.uuid == otp.call_uuid).scalar()


def status_of(otp: OtpRequest, call_status: str | None = None, now: datetime | None = None) -> str:
    """``pending``, ``verified``, ``expired`` or ``failed`` (see the module docstring)."""
    if otp.status == "verified":
        return "verified"
    if otp.status == "failed" or otp.attempts >= otp.max_attempts or call_status in _CALL_FAILED:
        return "failed"
    if (now or utcnow()) >= otp.expires_at:
        return "expired"
    return "pending"


def _by_number(account_id: int, number: str, now: datetime) -> tuple[OtpRequest, str | None] | None:
    query = (OtpRequest.select(OtpRequest, Call.status.alias("call_status"))
             .join(Call, JOIN.LEFT_OUTER, on=(OtpRequest.call_uuid == Call.uuid))
             .where((OtpRequest.account == account_id) & (OtpRequest.to_number == number))
             .order_by(OtpRequest.created_at.desc())
             .limit(20)
             .objects())
    found = list(query)
    for otp in found:
        if status_of(otp, otp.call_status, now) == "pending":
            return otp, otp.call_status
    return (found[0], found[0].call_status) if found else None


def verify(account: Account, code, request_id: str | None = None, number: str | None = None,
           now: datetime | None = None) -> VerifyOutcome:
    """Check ``code`` against a request (see the module docstring for the rules)."""
    now = now or utcnow()
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if not isinstance(code, str) or not code.strip() or not (request_id or number):
        return VerifyOutcome(400, MISSING)
    code = code.strip()
    if request_id:
        otp = find(account.id, request_id)
        call_status = call_status_of(otp) if otp is not None else None
    else:
        found = _by_number(account.id, number, now)
        otp, call_status = found if found else (None, None)
    if otp is None:
        return VerifyOutcome(400, NOT_FOUND)
    refused = _refusal(otp, call_status, now)
    if refused is not None:
        return refused
    with _locked(account.id, otp.to_number):  # the guess count, the attempt and its note
        return _check(account.id, otp, code, call_status, now)


def _check(account_id: int, otp: OtpRequest, code: str, call_status: str | None, now: datetime) -> VerifyOutcome:
    capped_for = _guess_cap(account_id, otp.to_number, now)
    if capped_for is not None:
        return VerifyOutcome(429, GUESSES_CAPPED, otp, retry_after=capped_for)
    counted = list(OtpRequest.update(attempts=OtpRequest.attempts + 1)
                   .where((OtpRequest.id == otp.id) & (OtpRequest.status == "pending")
                          & (OtpRequest.attempts < OtpRequest.max_attempts))
                   .returning(OtpRequest.attempts)
                   .execute())
    if not counted:  # a concurrent verify used the last attempt, or verified it
        otp = OtpRequest.get_by_id(otp.id)
        return _refusal(otp, call_status, now) or VerifyOutcome(400, TOO_MANY, otp)
    otp.attempts = counted[0].attempts
    if codes.matches(code, otp.salt, otp.code_hash):
        updated = (OtpRequest.update(status="verified", verified_at=now)
                   .where((OtpRequest.id == otp.id) & (OtpRequest.status == "pending")).execute())
        if not updated:
            return VerifyOutcome(400, USED, otp)
        otp.status, otp.verified_at = "verified", now
        return VerifyOutcome(200, VERIFIED, otp, verified=True)
    _note_guess(account_id, otp.to_number, now)
    left = max(0, otp.max_attempts - otp.attempts)
    if left == 0:
        OtpRequest.update(status="failed").where((OtpRequest.id == otp.id) & (OtpRequest.status == "pending")).execute()
        otp.status = "failed"
    return VerifyOutcome(401, INCORRECT, otp, attempts_left=left)


def _guess_cap(account_id: int, number: str, now: datetime) -> int | None:
    """None while the number may be guessed; else the seconds until the oldest wrong code
    of the window leaves it (at least 1)."""
    window = ((OtpGuess.account == account_id) & (OtpGuess.to_number == number)
              & (OtpGuess.at > now - timedelta(seconds=GUESS_WINDOW)))
    if OtpGuess.select().where(window).count() < GUESS_LIMIT:
        return None
    oldest = OtpGuess.select(OtpGuess.at).where(window).order_by(OtpGuess.at).first().at
    return max(1, int((oldest + timedelta(seconds=GUESS_WINDOW) - now).total_seconds()) + 1)


def _note_guess(account_id: int, number: str, now: datetime) -> None:
    """Note a wrong code for the number, and forget the number's notes the window has left."""
    OtpGuess.delete().where((OtpGuess.account == account_id) & (OtpGuess.to_number == number)
                            & (OtpGuess.at <= now - timedelta(seconds=GUESS_WINDOW))).execute()
    OtpGuess.create(account=account_id, to_number=number, at=now)


def _refusal(otp: OtpRequest, call_status: str | None, now: datetime) -> VerifyOutcome | None:
    if otp.status == "verified":
        return VerifyOutcome(400, USED, otp)
    if otp.attempts >= otp.max_attempts:
        return VerifyOutcome(400, TOO_MANY, otp)
    if otp.status == "failed" or call_status in _CALL_FAILED:
        return VerifyOutcome(400, NOT_FOUND, otp)
    if now >= otp.expires_at:
        return VerifyOutcome(400, EXPIRED, otp)
    return None


def script_for(controller, call: Call, speech: SpeechBook = SPEECH) -> SpeakCode | None:
    """The script of an answered verification call, or None if ``call`` is not one. If
    this process does not hold the call's code (placed elsewhere, or before a restart),
    the call is hung up and the request can only fail: the code exists nowhere else."""
    if call.surface != Surface.PUBLIC or call.campaign_id is not None:
        return None
    otp = OtpRequest.get_or_none(OtpRequest.call_uuid == call.uuid)
    if otp is None:
        return None
    said = speech.take(call.uuid)
    if said is None:
        logger.warning("call %s: verification code not held by this process; hanging up", call.uuid)
        OtpRequest.update(status="failed").where((OtpRequest.id == otp.id) & (OtpRequest.status == "pending")).execute()
        return SpeakCode(controller, call.uuid, call.node)
    return SpeakCode(controller, call.uuid, call.node, code=said.code, parts=list(said.parts))
