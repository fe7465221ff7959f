"""Saved campaigns: created and changed by the admin CLI, listed and triggered through
the public calling API.

Triggering one for a single number (``POST /campaigns/:id/trigger``) is refused, in this
order, when the campaign

==========================================  ====  =====================================================
situation                                   HTTP  details
==========================================  ====  =====================================================
is not the account's (or archived)          404   Campaign not found.
is a verification-code (otp) campaign       400   This is a verification-code campaign. Use the OTP
                                                  endpoints to send a code.
has a type that runs only as a whole list   400   This campaign type cannot be triggered for a single
                                                  number.
has no audio configured                     400   This campaign has no audio configured.
is paused                                   400   This campaign is paused.
==========================================  ====  =====================================================

``GET /campaigns`` lists the account's campaigns of the types the API knows
(``audio_blast``, ``press1``, ``otp``), archived ones left out.
"""
from __future__ import annotations

from gateway.calls.scripts import check_dtmf_map
from gateway.models import CAMPAIGN_STATUSES, CAMPAIGN_TYPES, AudioClip, SavedCampaign, utcnow

LISTED_TYPES = ("audio_blast", "press1", "otp")
TRIGGERABLE_TYPES = ("audio_blast", "press1")
MAX_NAME_LENGTH = 255

NOT_FOUND = "Campaign not found."
IS_OTP = "This is a verification-code campaign. Use the OTP endpoints to send a code."
NOT_SINGLE = "This campaign type cannot be triggered for a single number."
NO_AUDIO = "This campaign has no audio configured."
PAUSED = "This campaign is paused."


class TriggerRefused(Exception):
    """The campaign cannot be triggered: ``status`` and ``details`` as the contract says."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


def listed(account_id: int) -> list[SavedCampaign]:
    return list(SavedCampaign.select()
                .where((SavedCampaign.account == account_id) & SavedCampaign.type.in_(LISTED_TYPES)
                       & (SavedCampaign.status != "archived"))
                .order_by(SavedCampaign.id))


def find(account_id: int, campaign_id) -> SavedCampaign | None:
    if isinstance(campaign_id, str):
        if not (campaign_id.isascii() and campaign_id.isdigit()) or len(campaign_id) > 18:
            return None
        campaign_id = int(campaign_id)
    return SavedCampaign.get_or_none((SavedCampaign.id == campaign_id) & (SavedCampaign.account == account_id))


def triggerable(account_id: int, campaign_id) -> tuple[SavedCampaign, AudioClip]:
    """The campaign and its clip, if it can be triggered for one number; else
    ``TriggerRefused`` with the contract's status and text."""
    campaign = find(account_id, campaign_id)
    if campaign is None or campaign.status == "archived":
        raise TriggerRefused(404, NOT_FOUND)
    if campaign.type == "otp":
        raise TriggerRefused(400, IS_OTP)
    if campaign.type not in TRIGGERABLE_TYPES:
        raise TriggerRefused(400, NOT_SINGLE)
    clip = AudioClip.get_or_none(AudioClip.id == campaign.audio_id) if campaign.audio_id else None
    if clip is None or clip.account_id != account_id:
        raise TriggerRefused(400, NO_AUDIO)
    if campaign.status != "active":
        raise TriggerRefused(400, PAUSED)
    return campaign, clip


def check_name(name: str) -> str:
    text = (name or "").strip()
    if not text or len(text) > MAX_NAME_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError(f"a campaign name is 1 to {MAX_NAME_LENGTH} printable characters")
    return text


def check_type(kind: str) -> str:
    if kind not in CAMPAIGN_TYPES:
        raise ValueError(f"campaign type {kind!r} is unknown; one of {', '.join(CAMPAIGN_TYPES)}")
    return kind


def check_status(status: str) -> str:
    if status not in CAMPAIGN_STATUSES:
        raise ValueError(f"campaign status {status!r} is unknown; one of {', '.join(CAMPAIGN_STATUSES)}")
    return status


def create(account, name: str, kind: str, *, audio: AudioClip | None = None, dtmf_map: dict | None = None,
           caller_id: str | None = None, status: str = "active") -> SavedCampaign:
    kind = check_type(kind)
    if audio is not None and audio.account_id != account.id:
        raise ValueError(f"audio clip {audio.id} belongs to another account")
    if dtmf_map is not None:
        if kind != "press1":
            raise ValueError("only press1 campaigns take a dtmf map")
        dtmf_map = check_dtmf_map(dtmf_map)
    return SavedCampaign.create(account=account, name=check_name(name), type=kind, status=check_status(status),
                                audio=audio, dtmf_map=dtmf_map, caller_id=caller_id)


def update(campaign: SavedCampaign, **changes) -> SavedCampaign:
    fields = []
    for name, value in changes.items():
        if name == "name":
            value = check_name(value)
        elif name == "status":
            value = check_status(value)
        elif name == "dtmf_map" and value is not None:
            if campaign.type != "press1":
                raise ValueError("only press1 campaigns take a dtmf map")
            value = check_dtmf_map(value)
        elif name == "audio" and value is not None and value.account_id != campaign.account_id:
            raise ValueError(f"audio clip {value.id} belongs to another account")
        elif name not in ("caller_id", "audio", "dtmf_map"):
            raise ValueError(f"a campaign has no setting {name!r}")
        setattr(campaign, name, value)
        fields.append(getattr(SavedCampaign, name))
    campaign.updated_at = utcnow()
    campaign.save(only=fields + [SavedCampaign.updated_at])
    return campaign
