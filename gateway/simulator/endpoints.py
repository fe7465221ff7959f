"""Channel variables the endpoint modules (mod_sofia, mod_loopback) set, stage by stage.

Each function returns ``(name, value)`` pairs in the order FreeSWITCH sets them; applying
them with ``Channel.set_vars`` reproduces the ``variable_*`` order of the captures
(a re-set moves a variable to the end, as in FreeSWITCH).  The sequences were read from
fs-captures (1.10.12): sip_originate_* (outbound legs: create, 180, 183, 200, refusals,
CANCEL), midcall_* (a 200 without provisional response, BYE sent), sip_inbound_* (inbound
leg create, answer, ACK), loopback_* (loopback A leg).  Values are synthesised: the far end
is a simulated SIP UA on 127.0.0.1 answering with PCMU.
"""

from __future__ import annotations

import random
import string
import time
import uuid as uuidlib

from .causes import SIP_PHRASES, code, sip_cause

DEFAULT_CODECS = "OPUS,G722,PCMU,PCMA,H264,VP8"
SOFIA_PROFILE_URL = "sip:mod_sofia@{ip}:5080"


def _tag(n: int = 13) -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


def _sdp(origin: str, ip: str, port: int) -> str:
    ver = int(time.time()) - 20_000_000
    return (f"v=0\r\no={origin} {ver} {ver + 1} IN IP4 {ip}\r\ns={origin}\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")


class SipDialog:
    """The simulated SIP dialog of one sofia channel (what the far end "sent")."""

    def __init__(self, local_ip: str, user: str, host: str, port: int, caller_number: str,
                 caller_name: str, profile: str = "external") -> None:
        self.local_ip = local_ip
        self.user = user
        self.host = host
        self.port = port
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.profile = profile
        self.call_id = str(uuidlib.uuid4())
        self.from_tag = _tag()
        self.to_tag = _tag()
        self.cseq = str(random.randint(100_000_000, 130_000_000))
        self.branch = "z9hG4bK" + _tag(14)
        self.local_media_port = random.randrange(16384, 32768, 2)
        self.remote_media_port = random.randrange(6000, 7000, 2)
        self.ssrc = str(random.randint(1 << 30, (1 << 32) - 1))
        # The final response FreeSWITCH sent to an INVITE it refused (inbound, unanswered).
        self.refused_with: tuple[int, str] | None = None

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


# -- sofia, outbound leg --------------------------------------------------------------------

def sofia_out_create(ch, dlg: SipDialog, dial_vars: list[tuple[str, str]], early_ok: bool,
                     gateway: str | None = None) -> list[tuple[str, str]]:
    codecs = dict(dial_vars).get("absolute_codec_string") or DEFAULT_CODECS
    out = [("direction", "outbound"), ("is_outbound", "true"), ("uuid", ch.uuid), ("call_uuid", ch.uuid),
           ("session_id", str(ch.session_id))]
    if gateway:  # gateway_commands.real.json: right after session_id
        out.append(("sip_gateway_name", gateway))
    out += [
        ("sip_local_network_addr", dlg.local_ip), ("sip_profile_name", dlg.profile),
        ("video_media_flow", "disabled"), ("text_media_flow", "disabled"), ("channel_name", ch.name),
        ("sip_destination_url", f"sip:{dlg.user}@{dlg.hostport}"),
    ]
    out += dial_vars
    out += [
        ("originate_early_media", "true" if early_ok else "false"), ("originate_endpoint", "sofia"),
        ("rtp_use_codec_string", codecs), ("local_media_ip", dlg.local_ip),
        ("local_media_port", str(dlg.local_media_port)), ("advertised_media_ip", dlg.local_ip),
        ("audio_media_flow", "sendrecv"), ("rtp_local_sdp_str", _sdp("FreeSWITCH", dlg.local_ip, dlg.local_media_port)),
        ("sip_outgoing_contact_uri", f"<sip:mod_sofia@{dlg.local_ip}:5080>"),
        ("sip_req_uri", f"{dlg.user}@{dlg.hostport}"), ("sip_to_host", dlg.hostport),
        ("sip_from_host", dlg.local_ip), ("sofia_profile_name", dlg.profile),
        ("recovery_profile_name", dlg.profile), ("sofia_profile_url", SOFIA_PROFILE_URL.format(ip=dlg.local_ip)),
    ]
    return out


def sofia_out_response(dlg: SipDialog, sdp: bool, final: bool, disposition: str | None = None) -> list[tuple[str, str]]:
    """What mod_sofia records from a 180/183/200 of the far end.  A 183 with SDP sets
    ep_codec_string early; a 200 sets it after the remote SDP."""
    early_sdp = sdp and not final
    out = [
        ("sip_local_network_addr", dlg.local_ip), ("sip_reply_host", dlg.host),
        ("sip_reply_port", str(dlg.port)), ("sip_network_ip", dlg.host), ("sip_network_port", str(dlg.port)),
    ]
    if early_sdp:
        out.append(("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b"))
    out += [
        ("sip_recover_contact", f"<sip:{dlg.user}@{dlg.hostport};transport=udp>"),
        ("sip_full_via", f"SIP/2.0/UDP {dlg.local_ip}:5080;rport=5080;branch={dlg.branch}"),
        ("sip_recover_via", f"SIP/2.0/UDP {dlg.local_ip}:5080;rport=5080;branch={dlg.branch}"),
        ("sip_from_display", dlg.caller_name),
        ("sip_full_from", f'"{dlg.caller_name}" <sip:{dlg.caller_number}@{dlg.local_ip}>;tag={dlg.from_tag}'),
        ("sip_full_to", f"<sip:{dlg.user}@{dlg.hostport}>;tag={dlg.to_tag}"),
        ("sip_from_user", dlg.caller_number), ("sip_from_uri", f"{dlg.caller_number}@{dlg.local_ip}"),
        ("sip_from_host", dlg.local_ip), ("sip_to_user", dlg.user), ("sip_to_port", str(dlg.port)),
        ("sip_to_uri", f"{dlg.user}@{dlg.hostport}"), ("sip_to_host", dlg.host),
        ("sip_contact_params", "transport=udp"), ("sip_contact_user", dlg.user),
        ("sip_contact_port", str(dlg.port)), ("sip_contact_uri", f"{dlg.user}@{dlg.hostport}"),
        ("sip_contact_host", dlg.host), ("sip_to_tag", dlg.to_tag), ("sip_from_tag", dlg.from_tag),
        ("sip_cseq", dlg.cseq), ("sip_call_id", dlg.call_id),
    ]
    if sdp:
        out.append(("switch_r_sdp", _sdp("far", dlg.host, dlg.remote_media_port)))
        if final:
            out.append(("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b"))
    if disposition:
        out.append(("endpoint_disposition", disposition))
    return out


def sofia_media(ch, dlg: SipDialog, with_ep_codec: bool, with_flow: bool) -> list[tuple[str, str]]:
    """Media activation (RTP up): codec choice and RTP parameters."""
    out = []
    if with_ep_codec:
        out.append(("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b"))
    out += [("rtp_use_codec_string", ch.get_var("rtp_use_codec_string") or DEFAULT_CODECS),
            ("remote_video_media_flow", "inactive"), ("remote_text_media_flow", "inactive"),
            ("remote_audio_media_flow", "sendrecv")]
    if with_flow:
        out.append(("audio_media_flow", "sendrecv"))
    out += [
        ("rtp_audio_recv_pt", "0"), ("rtp_use_codec_name", "PCMU"), ("rtp_use_codec_rate", "8000"),
        ("rtp_use_codec_ptime", "20"), ("rtp_use_codec_channels", "1"),
        ("rtp_last_audio_codec_string", "PCMU@8000h@20i@1c"), ("read_codec", "PCMU"),
        ("original_read_codec", "PCMU"), ("read_rate", "8000"), ("original_read_rate", "8000"),
        ("write_codec", "PCMU"), ("write_rate", "8000"), ("dtmf_type", "rfc2833"),
        ("local_media_ip", dlg.local_ip), ("local_media_port", str(dlg.local_media_port)),
        ("advertised_media_ip", dlg.local_ip), ("rtp_use_timer_name", "soft"), ("rtp_use_pt", "0"),
        ("rtp_use_ssrc", dlg.ssrc), ("rtp_2833_send_payload", "101"), ("rtp_2833_recv_payload", "101"),
        ("remote_media_ip", dlg.host), ("remote_media_port", str(dlg.remote_media_port)),
    ]
    return out


def sofia_refused(dlg: SipDialog, status: int, local: bool) -> list[tuple[str, str]]:
    """A final failure response (``recv_refuse``).  ``local`` = the transaction failed
    without any answer from the far end (unreachable: local 503, timer B: local 408)."""
    cause = sip_cause(status)
    out = [("sip_call_id", dlg.call_id), ("sip_local_network_addr", dlg.local_ip)]
    if local:
        out += [("sip_reply_port", "0"), ("sip_network_port", "0")]
    else:
        out += [("sip_reply_host", dlg.host), ("sip_reply_port", str(dlg.port)), ("sip_network_ip", dlg.host),
                ("sip_network_port", str(dlg.port))]
    out += [
        ("sip_hangup_disposition", "recv_refuse"), ("sip_invite_failure_status", str(status)),
        ("sip_invite_failure_phrase", SIP_PHRASES.get(status, "Unknown")), ("sip_term_status", str(status)),
        ("proto_specific_hangup_cause", f"sip:{status}"), ("sip_term_cause", str(code(cause))),
    ]
    return out


def sofia_cancelled() -> list[tuple[str, str]]:
    return [("sip_hangup_disposition", "send_cancel"), ("sip_invite_failure_status", "487"),
            ("sip_invite_failure_phrase", "CANCEL")]


def sofia_bye_received(cause: str) -> list[tuple[str, str]]:
    return [("sip_term_status", "200"), ("proto_specific_hangup_cause", "sip:200"),
            ("sip_term_cause", str(code(cause)))]


def rtp_stats(seconds: float) -> list[tuple[str, str]]:
    packets = int(seconds * 50)
    names = [
        ("rtp_audio_in_raw_bytes", packets * 172), ("rtp_audio_in_media_bytes", packets * 172),
        ("rtp_audio_in_packet_count", packets), ("rtp_audio_in_media_packet_count", packets),
        ("rtp_audio_in_skip_packet_count", 0), ("rtp_audio_in_jitter_packet_count", 0),
        ("rtp_audio_in_dtmf_packet_count", 0), ("rtp_audio_in_cng_packet_count", 0),
        ("rtp_audio_in_flush_packet_count", 0), ("rtp_audio_in_largest_jb_size", 0),
        ("rtp_audio_in_jitter_min_variance", "0.00"), ("rtp_audio_in_jitter_max_variance", "0.00"),
        ("rtp_audio_in_jitter_loss_rate", "0.00"), ("rtp_audio_in_jitter_burst_rate", "0.00"),
        ("rtp_audio_in_mean_interval", "20.00" if packets else "0.00"), ("rtp_audio_in_flaw_total", 0),
        ("rtp_audio_in_quality_percentage", "100.00"), ("rtp_audio_in_mos", "4.50"),
        ("rtp_audio_out_raw_bytes", packets * 172), ("rtp_audio_out_media_bytes", packets * 172),
        ("rtp_audio_out_packet_count", packets), ("rtp_audio_out_media_packet_count", packets),
        ("rtp_audio_out_skip_packet_count", 0), ("rtp_audio_out_dtmf_packet_count", 0),
        ("rtp_audio_out_cng_packet_count", 0), ("rtp_audio_rtcp_packet_count", 0),
        ("rtp_audio_rtcp_octet_count", 0),
    ]
    return [(k, str(v)) for k, v in names]


# -- sofia, inbound leg ---------------------------------------------------------------------

def sofia_in_create(ch, dlg: SipDialog, did: str, extra: dict[str, str] | None) -> list[tuple[str, str]]:
    caller_hp = f"{dlg.host}:{dlg.port}"
    out = [
        ("direction", "inbound"), ("uuid", ch.uuid), ("call_uuid", ch.uuid), ("session_id", str(ch.session_id)),
        ("sip_from_user", dlg.caller_number), ("sip_from_port", str(dlg.port)),
        ("sip_from_uri", f"{dlg.caller_number}@{caller_hp}"), ("sip_from_host", dlg.host),
        ("video_media_flow", "disabled"), ("audio_media_flow", "disabled"), ("text_media_flow", "disabled"),
        ("channel_name", ch.name), ("sip_call_id", dlg.call_id), ("sip_local_network_addr", dlg.local_ip),
        ("sip_network_ip", dlg.host), ("sip_network_port", str(dlg.port)),
        ("sip_invite_stamp", str(ch.profile.times.created)), ("sip_received_ip", dlg.host),
        ("sip_received_port", str(dlg.port)), ("sip_via_protocol", "udp"),
        ("sip_from_user_stripped", dlg.caller_number), ("sip_from_tag", dlg.from_tag),
        ("sofia_profile_name", dlg.profile), ("sofia_profile_url", SOFIA_PROFILE_URL.format(ip=dlg.local_ip)),
        ("recovery_profile_name", dlg.profile),
        ("sip_full_via", f"SIP/2.0/UDP {caller_hp};branch={dlg.branch}"),
        ("sip_from_display", dlg.caller_name),
        ("sip_full_from", (f'"{dlg.caller_name}" ' if dlg.caller_name else "")
         + f"<sip:{dlg.caller_number}@{caller_hp}>;tag={dlg.from_tag}"),
        ("sip_full_to", f"<sip:{did}@{dlg.local_ip}:5080>"), ("sip_req_user", did), ("sip_req_port", "5080"),
        ("sip_req_uri", f"{did}@{dlg.local_ip}:5080"), ("sip_req_host", dlg.local_ip), ("sip_to_user", did),
        ("sip_to_port", "5080"), ("sip_to_uri", f"{did}@{dlg.local_ip}:5080"), ("sip_to_host", dlg.local_ip),
        ("sip_contact_params", "transport=UDP"), ("sip_contact_user", dlg.caller_number),
        ("sip_contact_port", str(dlg.port)), ("sip_contact_uri", f"{dlg.caller_number}@{caller_hp}"),
        ("sip_contact_host", dlg.host), ("rtp_use_codec_string", DEFAULT_CODECS),
        ("sip_user_agent", "voicegw-simulator"), ("sip_via_host", dlg.host), ("sip_via_port", str(dlg.port)),
        ("max_forwards", "70"), ("switch_r_sdp", _sdp("uac", dlg.host, dlg.remote_media_port)),
        ("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b"),
        ("endpoint_disposition", "DELAYED NEGOTIATION"),
    ]
    if extra:
        out += [(k, str(v)) for k, v in extra.items()]
    return out


def sofia_in_acked(dlg: SipDialog) -> list[tuple[str, str]]:
    """The caller's ACK of our 200 OK."""
    caller_hp = f"{dlg.host}:{dlg.port}"
    return [
        ("endpoint_disposition", "ANSWER"), ("sip_to_tag", dlg.to_tag), ("sip_from_tag", dlg.from_tag),
        ("sip_cseq", "1"), ("sip_call_id", dlg.call_id),
        ("sip_full_via", f"SIP/2.0/UDP {caller_hp};branch={dlg.branch}"), ("sip_from_display", dlg.caller_name),
        ("sip_full_from", (f'"{dlg.caller_name}" ' if dlg.caller_name else "")
         + f"<sip:{dlg.caller_number}@{caller_hp}>;tag={dlg.from_tag}"),
        ("sip_full_to", f"<sip:{dlg.user}@{dlg.local_ip}:5080>;tag={dlg.to_tag}"),
    ]


# -- loopback -------------------------------------------------------------------------------

def loopback_a_initial(ch) -> list[tuple[str, str]]:
    return [
        ("direction", "outbound"), ("is_outbound", "true"), ("session_id", str(ch.session_id)),
        ("read_codec", "L16"), ("read_rate", "8000"), ("write_codec", "L16"), ("write_rate", "8000"),
        ("channel_name", ch.name), ("uuid", ch.uuid), ("call_uuid", ch.uuid),
    ]


def loopback_a_create(dial_vars, early_ok: bool, other_uuid: str) -> list[tuple[str, str]]:
    return list(dial_vars) + [
        ("originate_early_media", "true" if early_ok else "false"), ("originate_endpoint", "loopback"),
        ("other_loopback_leg_uuid", other_uuid), ("loopback_leg", "A"),
    ]


def loopback_b_create(ch, dial_vars, other_uuid: str) -> list[tuple[str, str]]:
    return [
        ("direction", "inbound"), ("uuid", ch.uuid), ("call_uuid", ch.uuid), ("session_id", str(ch.session_id)),
        ("channel_name", ch.name), ("read_codec", "L16"), ("read_rate", "8000"), ("write_codec", "L16"),
        ("write_rate", "8000"),
    ] + [(k, v) for k, v in dial_vars if k.startswith("origination_")] + [
        ("other_loopback_leg_uuid", other_uuid), ("loopback_leg", "B"),
    ]
