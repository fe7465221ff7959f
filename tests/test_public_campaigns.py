"""``GET /campaigns`` and ``POST /campaigns/:id/trigger``: the list, all four error cases
(and a paused campaign), and a triggered run really playing; SQLite and PostgreSQL."""
from __future__ import annotations

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth, wait_script
from gateway.campaigns import saved
from gateway.campaigns.audio import store_clip
from gateway.models import Call, PublicRun, SavedCampaign
from test_public_support import tone_wav


def trigger(client, pair, campaign_id, **body):
    return client.post(f"{BASE}/campaigns/{campaign_id}/trigger", json=body, headers=auth(pair))


def test_list_campaigns(client, pair, other_pair, india, other, clip):
    blast = saved.create(india, "March promo", "audio_blast", audio=clip)
    press = saved.create(india, "Renewal press-1", "press1", audio=clip, dtmf_map={"1": "connect_agent"})
    otp = saved.create(india, "Signup verification", "otp")
    saved.create(india, "Agent outreach", "voice_agent")  # not an API campaign: not listed
    saved.create(india, "Old", "audio_blast", status="archived")
    paused = saved.create(india, "Paused", "press1", audio=clip, status="paused")
    saved.create(other, "Theirs", "audio_blast")
    response = client.get(f"{BASE}/campaigns", headers=auth(pair))
    assert response.status_code == 200
    assert response.json == {"status": "success", "code": 200, "unique_id": None, "reference_id": None,
                             "details": "OK", "data": [
                                 {"id": blast.id, "name": "March promo", "type": "audio_blast", "status": "active"},
                                 {"id": press.id, "name": "Renewal press-1", "type": "press1", "status": "active"},
                                 {"id": otp.id, "name": "Signup verification", "type": "otp", "status": "active"},
                                 {"id": paused.id, "name": "Paused", "type": "press1", "status": "paused"}]}
    assert [c["name"] for c in client.get(f"{BASE}/campaigns", headers=auth(other_pair)).json["data"]] == ["Theirs"]


def test_trigger_errors(client, gw, pair, india, other, clip):
    theirs = saved.create(other, "Theirs", "audio_blast", audio=store_clip(other, tone_wav(0.2), name="x"))
    cases = [
        (999_999, 404, "Campaign not found."),
        ("abc", 404, "Campaign not found."),
        (theirs.id, 404, "Campaign not found."),
        (saved.create(india, "Archived", "audio_blast", audio=clip, status="archived").id, 404, "Campaign not found."),
        (saved.create(india, "Signup", "otp").id, 400,
         "This is a verification-code campaign. Use the OTP endpoints to send a code."),
        (saved.create(india, "Agent outreach", "voice_agent").id, 400,
         "This campaign type cannot be triggered for a single number."),
        (saved.create(india, "Silent", "audio_blast").id, 400, "This campaign has no audio configured."),
        (saved.create(india, "Silent press", "press1").id, 400, "This campaign has no audio configured."),
        (saved.create(india, "Paused", "audio_blast", audio=clip, status="paused").id, 400, "This campaign is paused."),
    ]
    for campaign_id, code, details in cases:
        response = trigger(client, pair, campaign_id, number="9812345678", reference_id="lead-5567")
        assert response.json == {"status": "error", "code": code, "unique_id": None, "reference_id": "lead-5567",
                                 "details": details}, campaign_id
        assert response.status_code == code
    # A missing number of an unknown campaign is still "not found"; of a good one, a 400.
    assert trigger(client, pair, 999_999).status_code == 404
    good = saved.create(india, "Good", "audio_blast", audio=clip)
    response = trigger(client, pair, good.id)
    assert (response.status_code, response.json["details"]) == (400, "A valid Indian mobile number is required.")
    assert Call.select().count() == 0


def test_trigger_runs_the_campaign(client, gw, sim, pair, india, clip):
    campaign = saved.create(india, "Renewal press-1", "press1", audio=clip, dtmf_map={"2": "connect_agent"})
    response = trigger(client, pair, campaign.id, number="9812345678", reference_id="lead-5567")
    assert response.status_code == 200, response.json
    run = PublicRun.get()
    assert response.json == {"status": "success", "code": 200, "unique_id": f"run_{run.id}",
                             "reference_id": "lead-5567", "details": "Call queued."}
    assert (run.campaign_id, run.type, run.dtmf_map, run.audio_path) == (campaign.id, "press1", {"2": "connect_agent"},
                                                                         clip.path)
    sim.wait_event(run.call_uuid, "PLAYBACK_START", timeout=5)
    sim.press(run.call_uuid, "2")
    assert wait_script(gw, run.call_uuid).steps[-1] == "transfer"
    # The clip of the campaign can be changed; later runs use the new one.
    other_clip = store_clip(india, tone_wav(0.2), name="v2")
    saved.update(SavedCampaign.get_by_id(campaign.id), audio=other_clip)
    trigger(client, pair, campaign.id, number="9812345679")
    assert PublicRun.select().order_by(PublicRun.id.desc()).first().audio_path == other_clip.path
