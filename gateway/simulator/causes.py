"""Hangup causes: names, Q.850 codes, and the SIP status mapping mod_sofia uses.

Facts: FreeSWITCH ``switch_types.h`` (enum values) and ``switch_channel.c`` (``CAUSE_CHART``,
``switch_channel_str2cause``, ``switch_channel_cause_q850``); mod_sofia
``sofia_glue_sip_cause_to_freeswitch`` (research/freeswitch.md §1.11) and
``hangup_cause_to_sip`` (mod_sofia.c).
"""

from __future__ import annotations

CAUSES: dict[str, int] = {
    "NONE": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22, "REDIRECTION_TO_NEW_DESTINATION": 23, "EXCHANGE_ROUTING_ERROR": 25,
    "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29,
    "RESPONSE_TO_STATUS_ENQUIRY": 30, "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38, "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42,
    "ACCESS_INFO_DISCARDED": 43, "REQUESTED_CHAN_UNAVAIL": 44, "PRE_EMPTED": 45,
    "FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52, "INCOMING_CALL_BARRED": 54,
    "BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58, "SERVICE_UNAVAILABLE": 63,
    "BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66, "FACILITY_NOT_IMPLEMENTED": 69,
    "SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81, "INCOMPATIBLE_DESTINATION": 88,
    "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96, "MESSAGE_TYPE_NONEXIST": 97,
    "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100, "WRONG_CALL_STATE": 101,
    "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103, "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 700,
    "SYSTEM_SHUTDOWN": 701, "LOSE_RACE": 702, "MANAGER_REQUEST": 703, "BLIND_TRANSFER": 800,
    "ATTENDED_TRANSFER": 801, "ALLOTTED_TIMEOUT": 802, "USER_CHALLENGE": 803, "MEDIA_TIMEOUT": 804,
    "PICKED_OFF": 805, "USER_NOT_REGISTERED": 806, "PROGRESS_TIMEOUT": 807, "INVALID_GATEWAY": 808,
    "GATEWAY_DOWN": 809, "INVALID_URL": 810, "INVALID_PROFILE": 811, "NO_PICKUP": 812,
    "SRTP_READ_ERROR": 813, "BOWOUT": 814, "BUSY_EVERYWHERE": 815, "DECLINE": 816,
    "DOES_NOT_EXIST_ANYWHERE": 817, "NOT_ACCEPTABLE": 818, "UNWANTED": 819, "NO_IDENTITY": 820,
    "BAD_IDENTITY_INFO": 821, "UNSUPPORTED_CERTIFICATE": 822, "INVALID_IDENTITY": 823,
    "STALE_DATE": 824, "REJECT_ALL": 825,
}
_BY_CODE = {code: name for name, code in CAUSES.items()}

# SIP final response -> cause (mod_sofia), and the reason phrase SIPp/FreeSWITCH send.
SIP_TO_CAUSE: dict[int, str] = {
    400: "NORMAL_TEMPORARY_FAILURE", 401: "CALL_REJECTED", 402: "CALL_REJECTED", 403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER", 405: "SERVICE_UNAVAILABLE", 406: "SERVICE_NOT_IMPLEMENTED",
    407: "CALL_REJECTED", 408: "RECOVERY_ON_TIMER_EXPIRE", 410: "NUMBER_CHANGED",
    415: "SERVICE_NOT_IMPLEMENTED", 480: "NO_USER_RESPONSE", 481: "NORMAL_TEMPORARY_FAILURE",
    484: "INVALID_NUMBER_FORMAT", 485: "NO_ROUTE_DESTINATION", 486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL", 488: "INCOMPATIBLE_DESTINATION", 500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED", 502: "NETWORK_OUT_OF_ORDER", 503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE", 600: "USER_BUSY", 603: "CALL_REJECTED", 604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION", 607: "UNWANTED", 608: "CALL_REJECTED",
}
SIP_PHRASES: dict[int, str] = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 415: "Unsupported Media Type", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 483: "Too Many Hops", 484: "Address Incomplete",
    485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
    607: "Unwanted", 608: "Rejected",
}


# Cause -> the SIP final response mod_sofia sends when it hangs up an unanswered inbound
# call (``hangup_cause_to_sip`` in mod_sofia.c, FreeSWITCH 1.10: RFC 4497 plus a few
# custom mappings); any other cause gets 480.
CAUSE_TO_SIP: dict[str, int] = {
    "UNALLOCATED_NUMBER": 404, "NO_ROUTE_TRANSIT_NET": 404, "NO_ROUTE_DESTINATION": 404,
    "USER_BUSY": 486, "NO_USER_RESPONSE": 408, "NO_ANSWER": 480, "SUBSCRIBER_ABSENT": 480,
    "CALL_REJECTED": 603, "NUMBER_CHANGED": 410, "REDIRECTION_TO_NEW_DESTINATION": 410,
    "DESTINATION_OUT_OF_ORDER": 502, "INVALID_PROFILE": 502, "INVALID_NUMBER_FORMAT": 484,
    "INVALID_URL": 484, "INVALID_GATEWAY": 484, "FACILITY_REJECTED": 501, "NORMAL_UNSPECIFIED": 480,
    "REQUESTED_CHAN_UNAVAIL": 503, "NORMAL_CIRCUIT_CONGESTION": 503, "NETWORK_OUT_OF_ORDER": 503,
    "NORMAL_TEMPORARY_FAILURE": 503, "SWITCH_CONGESTION": 503, "GATEWAY_DOWN": 503,
    "OUTGOING_CALL_BARRED": 403, "INCOMING_CALL_BARRED": 403, "BEARERCAPABILITY_NOTAUTH": 403,
    "BEARERCAPABILITY_NOTAVAIL": 503, "BEARERCAPABILITY_NOTIMPL": 488, "INCOMPATIBLE_DESTINATION": 488,
    "FACILITY_NOT_IMPLEMENTED": 501, "SERVICE_NOT_IMPLEMENTED": 501, "RECOVERY_ON_TIMER_EXPIRE": 504,
    "ORIGINATOR_CANCEL": 487, "EXCHANGE_ROUTING_ERROR": 483, "BUSY_EVERYWHERE": 600, "DECLINE": 603,
    "DOES_NOT_EXIST_ANYWHERE": 604, "NOT_ACCEPTABLE": 606, "UNWANTED": 607,
}


def refusal_response(cause: str) -> tuple[int, str]:
    """The SIP status and reason phrase FreeSWITCH answers an unanswered inbound INVITE
    with when the channel is hung up with ``cause``."""
    status = CAUSE_TO_SIP.get(cause, 480)
    return status, SIP_PHRASES.get(status, "Unknown")


def str2cause(text: str | None) -> str:
    """``switch_channel_str2cause``: a name (any case) or a number; anything else is
    NORMAL_CLEARING."""
    if not text:
        return "NORMAL_CLEARING"
    word = text.strip()
    if word.isdigit():
        return _BY_CODE.get(int(word), "NORMAL_CLEARING")
    name = word.upper()
    return name if name in CAUSES else "NORMAL_CLEARING"


def code(cause: str) -> int:
    return CAUSES.get(cause, 16)


def q850(cause: str) -> int:
    """``switch_channel_cause_q850``: the code when it is a Q.850 value (<= 127), else 16."""
    value = CAUSES.get(cause, 16)
    return value if value <= 127 else 16


def sip_cause(status: int) -> str:
    return SIP_TO_CAUSE.get(status, "NORMAL_UNSPECIFIED")
