"""Names shared by the gateway and the FreeSWITCH configuration it ships.

The XML under ``dialplan/`` and ``freeswitch-conf/`` and the Python that drives FreeSWITCH meet
only through these names: contexts the controller transfers into, destination numbers it
transfers to, channel variables the dialplan sets for it (or it sets for the dialplan), global
variables in ``vars.xml`` and the modules it needs loaded. Import them from here; never spell
them again. ``tests/test_dialplan.py`` checks that every one of them exists in the shipped XML.

How they are used (see ``dialplan/README.md`` for the dialplan author's side):

* Inbound: a carrier call enters :data:`PUBLIC_CONTEXT`. A DID the gateway serves is parked
  (CHANNEL_PARK) with :data:`VAR_DID` and :data:`VAR_DIRECTION` ``= inbound`` set, and, where the
  dialplan author pinned the route, :data:`VAR_ROUTE` plus its target (:data:`VAR_SOCKET_URL`,
  :data:`VAR_AGENT` or :data:`VAR_WEBHOOK_URL`) and :data:`VAR_ACCOUNT`. Without
  :data:`VAR_ROUTE` the gateway routes by its own phone-number table. Any other number is hung
  up with ``UNALLOCATED_NUMBER`` by the dialplan and never reaches the gateway.
* Outbound: the controller originates ``sofia/gateway/<carrier>/<number>`` with ``&park()``;
  the carrier's gateway name is the global variable :data:`GLOBAL_CARRIER`, readable over ESL
  with ``api global_getvar gateway_carrier`` so that it is configured in one place.
* Transfer: ``uuid_transfer <uuid> <destination> XML gateway_transfer``, where
  :func:`transfer_target` turns the API's destination into ``<destination>`` and the channel
  variables to set first (``uuid_setvar``). Numbers go out through the carrier, 3-5 digit
  extensions to agents' registered phones, SIP URIs through :data:`VAR_TRANSFER_URI`. A failed transfer
  (``USER_BUSY``, ``NO_ANSWER``, ..., or ``INVALID_NUMBER_FORMAT`` for a destination no extension
  takes) sets :data:`VAR_TRANSFER_RESULT` to the cause and parks the call again: the gateway knows
  the CHANNEL_PARK for that return by its ``Caller-Context``, :data:`TRANSFER_CONTEXT`, and the
  account's ``on_transfer_failure`` says whether the call goes back to its bot or ends with the cause.
"""

from __future__ import annotations

import re

#: The dialplan module every context here belongs to (``uuid_transfer … XML <context>``).
DIALPLAN = "XML"

# --- contexts --------------------------------------------------------------------------------

#: Calls from the carrier (sofia profile ``external``) are routed here.
PUBLIC_CONTEXT = "public"
#: The controller transfers calls into this context (``uuid_transfer <uuid> <dest> XML …``).
TRANSFER_CONTEXT = "gateway_transfer"
#: Calls placed by registered agents' phones (sofia profile ``internal``).
AGENTS_CONTEXT = "agents"
#: ``voicegw doctor``'s playback probe calls ``loopback/<PROBE_DESTINATION>/<PROBE_CONTEXT>``:
#: the context answers the loopback's B leg, which stands for the caller.
PROBE_CONTEXT = "gateway_probe"
#: Every context the shipped dialplan must define (``voicegw doctor`` checks them).
CONTEXTS = (PUBLIC_CONTEXT, TRANSFER_CONTEXT, AGENTS_CONTEXT, PROBE_CONTEXT)

# --- extensions (``<extension name=…>``) ----------------------------------------------------

#: Public context: parks every DID matching ``gateway_did_regex`` for the gateway.
EXT_INBOUND = "gateway_inbound"
#: Public context: last extension, rejects every other number with ``UNALLOCATED_NUMBER``.
EXT_UNALLOCATED = "unallocated"
#: Probe context: answers the probe's B leg and parks it.
EXT_PROBE = "playback_probe"
#: The destination number the probe dials in :data:`PROBE_CONTEXT`.
PROBE_DESTINATION = "voicegw_probe"
#: Transfer context: applies to every transfer (ringback, hang up after the bridge).
EXT_TRANSFER_SETUP = "transfer_setup"
#: Transfer context: parks the call again, handing it back to the gateway.
EXT_PARK = "gateway_park"
#: Transfer context: bridges to the SIP URI held in :data:`VAR_TRANSFER_URI`.
EXT_SIP_URI = "sip_uri"
#: Transfer context: bridges to the phone registered as that user (``sofia/internal/<ext>%<domain>``).
EXT_EXTENSION = "extension"
#: Transfer context: bridges a PSTN number through the carrier gateway.
EXT_PSTN = "pstn"
#: Transfer context: last extension, hands anything else back (parked, result ``INVALID_NUMBER_FORMAT``).
EXT_INVALID = "invalid_destination"

#: Destination number that selects :data:`EXT_PARK` in the transfer context.
TRANSFER_PARK = "gateway_park"
#: Destination number that selects :data:`EXT_SIP_URI`; the URI itself travels in
#: :data:`VAR_TRANSFER_URI` because a URI is not safe as a bare ESL argument or dial string.
TRANSFER_SIP_URI = "sip_uri"

# --- channel variables -----------------------------------------------------------------------

#: The number the caller dialled, as the carrier sent it (set by the public context).
VAR_DID = "gateway_did"
#: ``inbound`` on calls the public context parked for the gateway.
VAR_DIRECTION = "gateway_direction"
#: Optional, pinned by the dialplan author: one of :data:`ROUTES`.
VAR_ROUTE = "gateway_route"
#: Optional: the account that owns the DID (the gateway's account id).
VAR_ACCOUNT = "gateway_account"
#: With ``gateway_route=bot``: the bot's WebSocket URL (or ``elevenlabs``/``vapi[&<agent id>]``).
VAR_SOCKET_URL = "gateway_socket_url"
#: With ``gateway_route=agent``: the key of the gateway's voice agent.
VAR_AGENT = "gateway_agent"
#: With ``gateway_route=webhook``: the routing webhook URL consulted for this call.
VAR_WEBHOOK_URL = "gateway_webhook_url"
#: Set by the controller before transferring to :data:`TRANSFER_SIP_URI`.
VAR_TRANSFER_URI = "gateway_transfer_uri"
#: Set by the transfer context when a transfer failed, before it parks the call again: the
#: failure's cause name. The gateway unsets it once it has taken the call back.
VAR_TRANSFER_RESULT = "gateway_transfer_result"

#: The value of :data:`VAR_DIRECTION` on inbound calls.
DIRECTION_INBOUND = "inbound"
ROUTE_BOT = "bot"
ROUTE_AGENT = "agent"
ROUTE_WEBHOOK = "webhook"
#: The values :data:`VAR_ROUTE` may take, each with the variable that names its target.
ROUTES = {ROUTE_BOT: VAR_SOCKET_URL, ROUTE_AGENT: VAR_AGENT, ROUTE_WEBHOOK: VAR_WEBHOOK_URL}

#: Channel variables the shipped dialplan sets or reads on the gateway's behalf.
CHANNEL_VARIABLES = (
    VAR_DID,
    VAR_DIRECTION,
    VAR_ROUTE,
    VAR_ACCOUNT,
    VAR_SOCKET_URL,
    VAR_AGENT,
    VAR_WEBHOOK_URL,
    VAR_TRANSFER_URI,
    VAR_TRANSFER_RESULT,
)

#: How long a call may go without RTP (and on hold), in ms, before FreeSWITCH hangs it up.
#: FreeSWITCH 1.10 takes these as channel variables (the sofia profile parameters
#: ``rtp-timeout-sec``/``rtp-hold-timeout-sec`` are deprecated and warned about at load):
#: the public dialplan sets them on inbound calls, ``originate_command`` on outbound legs.
MEDIA_TIMEOUT_VARIABLES = {"media_timeout": "300000", "media_hold_timeout": "1800000"}
#: A bidirectional mod_audio_stream build writes the bot's audio into the frames the channel
#: writes; a parked channel writes none unless this is set, and the park loop reads it once,
#: when media comes up (research/downlink.md §2).  So it is set before the park: by the public
#: dialplan on inbound calls, by ``originate_command`` on outbound legs.
STREAM_CHANNEL_VARIABLES = {"send_silence_when_idle": "-1"}

# --- global variables (``freeswitch-conf/vars.xml``) -----------------------------------------

#: Name of the carrier's sofia gateway (``sofia/gateway/<name>/<number>``).
GLOBAL_CARRIER = "gateway_carrier"
#: The Event Socket password: set once in vars.xml, copied into ``FREESWITCH_NODES`` at install.
GLOBAL_ESL_PASSWORD = "esl_password"
#: Regex of the DIDs the public context hands to the gateway.
GLOBAL_DID_REGEX = "gateway_did_regex"
#: Regex (one capture group) of the extensions transfers may dial.
GLOBAL_EXTENSION_REGEX = "gateway_extension_regex"
#: Value of ``esl_password`` in the repository; installation replaces it.
ESL_PASSWORD_PLACEHOLDER = "change-me-at-install"

#: Modules the gateway needs loaded (``voicegw doctor`` asks ``module_exists`` for each).
REQUIRED_MODULES = (
    "mod_event_socket",
    "mod_sofia",
    "mod_loopback",
    "mod_commands",
    "mod_dptools",
    "mod_dialplan_xml",
    "mod_sndfile",
    "mod_tone_stream",
    "mod_say_en",
    "mod_flite",
    "mod_audio_stream",
)


# What the transfer context accepts as a SIP URI (dialplan/gateway_transfer.xml, extension
# sip_uri): no character that means something in a dial string or to variable expansion.
_SIP_URI = re.compile(r"sips?:[\w.!~*+%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?", re.ASCII)
# Any other destination: a number, an extension or one of the names above.
_DESTINATION = re.compile(r"[A-Za-z0-9_+*#.-]+", re.ASCII)


def transfer_target(destination: str) -> tuple[str, dict[str, str]]:
    """Map an API transfer destination to what ``uuid_transfer`` needs.

    Returns ``(destination_number, variables)``: set ``variables`` on the channel first
    (``uuid_setvar``), then ``uuid_transfer <uuid> <destination_number> XML gateway_transfer``.
    A SIP URI (``sip:``/``sips:``) travels in :data:`VAR_TRANSFER_URI` and the call is transferred
    to :data:`TRANSFER_SIP_URI`; anything else (a PSTN number, an extension) is the destination
    itself. The transfer context validates both and hangs up ``INVALID_NUMBER_FORMAT`` on garbage.

    Raises ``ValueError`` for what must never reach FreeSWITCH: an empty destination, one the
    space-separated ESL command line cannot carry, a SIP URI the transfer context would refuse,
    and characters with a meaning in dial strings or variable expansion (``, | { } [ ] $``...).
    FreeSWITCH expands a channel variable's value again when the dialplan reads it, so a value
    is checked before it is set, not after.
    """
    target = destination.strip() if isinstance(destination, str) else ""
    scheme, sep, rest = target.partition(":")
    if sep and scheme.lower() in ("sip", "sips"):
        uri = f"{scheme.lower()}:{rest}"  # the transfer context matches the scheme in lower case
        if not _SIP_URI.fullmatch(uri):
            raise ValueError(f"not a SIP URI the gateway can transfer to: {destination!r}")
        return TRANSFER_SIP_URI, {VAR_TRANSFER_URI: uri}
    if not _DESTINATION.fullmatch(target):
        raise ValueError(f"not a transfer destination: {destination!r}")
    return target, {}
