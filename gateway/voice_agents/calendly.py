"""The Calendly preset: one tool that reads an event type's open times and books one,
through Calendly's API v2 with the agent's token (an env var, ``CALENDLY_TOKEN`` unless
the preset names another).

* ``availability``: ``GET /event_type_available_times?event_type=…&start_time=…&end_time=…``
  (Calendly allows a range of at most 7 days);
* ``book``: ``POST /invitees`` (the Scheduling API: event type, start time, invitee's
  name, email and time zone), which needs a paid Calendly plan.
"""
from __future__ import annotations

import json

API_URL = "https://api.calendly.com"  # tests point it at a stand-in on 127.0.0.1
DEFAULT_TOKEN_ENV = "CALENDLY_TOKEN"
DESCRIPTION = ("Check open meeting times (action availability, with start_time and end_time, ISO 8601, at most"
               " 7 days apart) or book one (action book, with start_time, name, email and timezone).")

PARAMETERS = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["availability", "book"]},
        "start_time": {"type": "string", "format": "date-time"},
        "end_time": {"type": "string", "format": "date-time"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "email": {"type": "string", "format": "email", "maxLength": 320},
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    "required": ["action", "start_time"],
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"action": {"const": "availability"}}}, "then": {"required": ["end_time"]}},
        {"if": {"properties": {"action": {"const": "book"}}}, "then": {"required": ["name", "email", "timezone"]}},
    ],
}


def request_for(config: dict, parameters: dict, token: str) -> dict:
    """The HTTP request (``method``, ``url``, ``headers``, ``params`` or ``json``) for one run."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if parameters["action"] == "availability":
        return {"method": "GET", "url": f"{API_URL}/event_type_available_times", "headers": headers,
                "params": {"event_type": config["event_type"], "start_time": parameters["start_time"],
                           "end_time": parameters["end_time"]}}
    return {"method": "POST", "url": f"{API_URL}/invitees", "headers": headers,
            "json": {"event_type": config["event_type"], "start_time": parameters["start_time"],
                     "invitee": {"name": parameters["name"], "email": parameters["email"],
                                 "timezone": parameters["timezone"]}}}


def result_text(action: str, body: str) -> str:
    """What the LLM is told: the open start times, or the booking's confirmation."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if action == "availability":
        times = [slot.get("start_time") for slot in data.get("collection", [])
                 if isinstance(slot, dict) and slot.get("status", "available") == "available"]
        return "Open start times: " + ", ".join(str(t) for t in times) if times else "No open times in that range."
    resource = data.get("resource", {}) if isinstance(data, dict) else {}
    return f"Booked: {resource.get('event') or resource.get('uri') or 'confirmed'}"
