"""Running an agent's tool during a conversation (ElevenLabs ``client_tool_call``):
``run_tool(agent, name, parameters) -> (result text, is_error)``.

The parameters are checked against the tool's JSON Schema; a webhook tool's URL and
headers get the agent's env vars (``gateway.voice_agents.env``); the request goes out
through the outbound-URL policy (``gateway.webhooks.urls.guarded_session``: no private
addresses, checked at connect time; no redirects followed), within ``TIMEOUT`` seconds,
reading at most ``MAX_RESPONSE_BYTES``. Every run is recorded (``ToolRun``), on its call
when the caller names it. Errors come back as text for the LLM, never raised.
"""
from __future__ import annotations

import json
import time

import jsonschema
import requests

from gateway.models import AgentTool, ToolRun
from gateway.voice_agents import calendly
from gateway.voice_agents.bounded_body import read_bounded
from gateway.voice_agents.env import MissingEnvVar, env_values, substitute
from gateway.webhooks.urls import UrlRefused, guarded_session

TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
#: Characters of a tool's answer given to the LLM.
MAX_RESULT_CHARS = 4000
_BODY_METHODS = ("POST", "PUT", "PATCH")


class ToolFailed(Exception):
    """A run that ends as an error text."""


def run_tool(agent, tool_name: str, parameters: dict, *, call_uuid: str | None = None) -> tuple[str, bool]:
    """Run ``agent``'s tool ``tool_name``; return its result text and whether it failed."""
    started = time.monotonic()
    tool = AgentTool.get_or_none(AgentTool.agent == agent.id, AgentTool.name == tool_name)
    valid = _is_json_object(parameters)
    if not valid:
        parameters = {}  # recorded as such: what came is no JSON object
    try:
        if tool is None:
            raise ToolFailed(f"the agent has no tool named {tool_name!r}")
        if not valid:
            raise ToolFailed("the parameters are not a JSON object")
        result, is_error = _run(agent, tool, parameters), False
    except ToolFailed as exc:
        result, is_error = f"Tool error: {exc}", True
    result = result[:MAX_RESULT_CHARS]
    ToolRun.create(agent=agent.id, call=call_uuid, tool_name=tool_name[:64], parameters=parameters, result=result,
                   is_error=is_error, duration_ms=int((time.monotonic() - started) * 1000))
    return result, is_error


def _is_json_object(value) -> bool:
    """A dict that is JSON (no NaN or Infinity, which Python's reader takes but no JSON has)."""
    if not isinstance(value, dict):
        return False
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _run(agent, tool: AgentTool, parameters) -> str:
    try:
        jsonschema.validate(parameters, tool.parameters, format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError as exc:
        raise ToolFailed(f"invalid parameters: {exc.message}") from None
    values = env_values(agent)
    try:
        if tool.kind == "calendly":
            token_env = tool.config.get("token_env", calendly.DEFAULT_TOKEN_ENV)
            if token_env not in values:
                raise MissingEnvVar(f"the agent has no env var {token_env}")
            request = calendly.request_for(tool.config, parameters, values[token_env])
            return calendly.result_text(parameters["action"], _send(request))
        headers = {name: substitute(value, values) for name, value in tool.headers.items()}
        request = {"method": tool.method, "url": substitute(tool.url, values), "headers": headers}
        request["json" if tool.method in _BODY_METHODS else "params"] = parameters
        return _send(request)
    except MissingEnvVar as exc:
        raise ToolFailed(str(exc)) from None


def _send(request: dict) -> str:
    session = guarded_session(pool_maxsize=1)
    try:
        with session.request(timeout=TIMEOUT, allow_redirects=False, stream=True, **request) as response:
            body = _read(response)
            if response.status_code >= 400:
                raise ToolFailed(f"the service answered {response.status_code}: {body[:500]}")
            return body
    except UrlRefused as exc:
        raise ToolFailed(str(exc)) from None
    except requests.RequestException as exc:
        raise ToolFailed(f"the request failed: {type(exc).__name__}") from None
    finally:
        session.close()


def _read(response) -> str:
    body = read_bounded(response, max_bytes=MAX_RESPONSE_BYTES, deadline=time.monotonic() + TIMEOUT,
                        too_large=ToolFailed(f"the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                        too_slow=ToolFailed(f"the answer took longer than {TIMEOUT:g} s"))
    text = body.decode(response.encoding or "utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text
