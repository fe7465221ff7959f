"""Loading a campaign's contacts, and the account's do-not-call list.

Each row is checked on its own: ``phone`` (normalised to E.164 in the account's region),
an optional ``name`` and optional ``variables`` (an object of at most 50 names, each a
string, number, boolean or null: what the agent gets as dynamic variables). A row that
fails is reported with its index and reason and the others are loaded; a number already
in the campaign (or twice in the request) is skipped and counted; a number on the
account's do-not-call list is loaded as ``do_not_call`` and never dialled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gateway.dialer.windows import zone_of_number
from gateway.models import Account, CampaignContact, DoNotCallEntry, VoiceCampaign, utcnow
from gateway.numbering import InvalidNumber, normalize

MAX_PER_REQUEST = 5000
MAX_VARIABLES = 50
MAX_VARIABLE_NAME = 64
MAX_VARIABLE_VALUE = 1024
ROW_FIELDS = ("phone", "name", "variables")
_CHUNK = 200


@dataclass
class LoadReport:
    loaded: int = 0
    duplicates: int = 0
    do_not_call: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"loaded": self.loaded, "duplicates_skipped": self.duplicates, "do_not_call": self.do_not_call,
                "rejected": self.rejected}


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def clean_row(row, region: str) -> dict:
    """One contact row checked; ``ValueError`` says what is wrong with it."""
    if not isinstance(row, dict):
        raise ValueError("a contact is an object with phone, name and variables")
    unknown = sorted(set(row) - set(ROW_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(map(str, unknown))}")
    phone = row.get("phone")
    if not isinstance(phone, str):
        raise ValueError("phone: a string is required")
    phone = normalize(phone, region)
    name = row.get("name")
    if name is not None:
        if not isinstance(name, str) or _has_control(name) or len(name.strip()) > 255:
            raise ValueError("name: a string of at most 255 printable characters")
        name = name.strip() or None
    variables = row.get("variables") or {}
    if not isinstance(variables, dict):
        raise ValueError("variables: an object of names to values")
    if len(variables) > MAX_VARIABLES:
        raise ValueError(f"variables: at most {MAX_VARIABLES}")
    for key, value in variables.items():
        if not key or len(key) > MAX_VARIABLE_NAME or _has_control(key):
            raise ValueError(f"variables: name {key[:MAX_VARIABLE_NAME]!r} must be 1 to {MAX_VARIABLE_NAME} "
                             "printable characters")
        if isinstance(value, str):
            if len(value) > MAX_VARIABLE_VALUE or "\x00" in value:
                raise ValueError(f"variables.{key}: at most {MAX_VARIABLE_VALUE} characters, no NUL")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise ValueError(f"variables.{key}: a string, number, boolean or null")
    return {"phone": phone, "name": name, "variables": variables}


def blocked_numbers(account_id: int, phones: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(phones), _CHUNK):
        chunk = phones[start:start + _CHUNK]
        found.update(phone for (phone,) in DoNotCallEntry.select(DoNotCallEntry.phone)
                     .where((DoNotCallEntry.account == account_id) & DoNotCallEntry.phone.in_(chunk)).tuples())
    return found


def _existing(campaign_id: int, phones: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(phones), _CHUNK):
        chunk = phones[start:start + _CHUNK]
        found.update(phone for (phone,) in CampaignContact.select(CampaignContact.phone)
                     .where((CampaignContact.campaign == campaign_id) & CampaignContact.phone.in_(chunk)).tuples())
    return found


def load(account: Account, campaign: VoiceCampaign, rows: list) -> LoadReport:
    """Check and insert ``rows`` (at most ``MAX_PER_REQUEST``), inside the caller's transaction."""
    if len(rows) > MAX_PER_REQUEST:
        raise ValueError(f"at most {MAX_PER_REQUEST} contacts per request")
    report = LoadReport()
    cleaned: dict[str, dict] = {}
    for index, row in enumerate(rows):
        try:
            contact = clean_row(row, account.region)
        except (InvalidNumber, ValueError) as exc:
            phone = row.get("phone") if isinstance(row, dict) and isinstance(row.get("phone"), str) else None
            report.rejected.append({"index": index, "phone": phone, "reason": str(exc)})
            continue
        if contact["phone"] in cleaned:
            report.duplicates += 1
            continue
        cleaned[contact["phone"]] = contact
    phones = list(cleaned)
    existing = _existing(campaign.id, phones)
    blocked = blocked_numbers(account.id, phones)
    now = utcnow()
    inserts = []
    for phone, contact in cleaned.items():
        if phone in existing:
            report.duplicates += 1
            continue
        state = "do_not_call" if phone in blocked else "pending"
        report.do_not_call += state == "do_not_call"
        inserts.append({"campaign": campaign.id, "phone": phone, "name": contact["name"],
                        "variables": contact["variables"], "timezone": zone_of_number(phone), "state": state,
                        "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now})
    for start in range(0, len(inserts), _CHUNK):
        CampaignContact.insert_many(inserts[start:start + _CHUNK]).execute()
    report.loaded = len(inserts)
    return report


# -- the do-not-call list ------------------------------------------------------------------


def block(account: Account, number: str, note: str | None = None) -> tuple[str, bool]:
    """Put a number on the list (E.164 in the account's region); its pending contacts of
    every campaign of the account become ``do_not_call``. Returns (number, added)."""
    phone = normalize(number, account.region)
    added = DoNotCallEntry.get_or_none((DoNotCallEntry.account == account.id) & (DoNotCallEntry.phone == phone)) is None
    if added:
        DoNotCallEntry.create(account=account.id, phone=phone, note=note)
    campaigns = VoiceCampaign.select(VoiceCampaign.id).where(VoiceCampaign.account == account.id)
    (CampaignContact.update(state="do_not_call", updated_at=utcnow())
     .where((CampaignContact.campaign.in_(campaigns)) & (CampaignContact.phone == phone)
            & (CampaignContact.state == "pending")).execute())
    return phone, added


def unblock(account: Account, number: str) -> tuple[str, bool]:
    phone = normalize(number, account.region)
    removed = DoNotCallEntry.delete().where(
        (DoNotCallEntry.account == account.id) & (DoNotCallEntry.phone == phone)).execute()
    return phone, bool(removed)


def blocked(account: Account) -> list[DoNotCallEntry]:
    return list(DoNotCallEntry.select().where(DoNotCallEntry.account == account.id).order_by(DoNotCallEntry.phone))
