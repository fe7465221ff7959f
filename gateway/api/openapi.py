"""What the OpenAPI document says about requests beyond what apispec reads off the fields.

The document must describe exactly what the surfaces accept: a request valid by its
schema is refused only for a reason the schema cannot express (a number outside every
numbering plan, a URL whose host is not public, an id that does not exist), and each
operation names those reasons in its 400's description.

Two kinds of declaration live here:

* field patterns: the forms of text that the views check themselves (phone numbers, bot
  and webhook URLs, codes), given to a field as ``metadata={"pattern": …}``. A pattern
  describes what reaches the view's check; the check keeps its own, more precise error
  messages;
* body rules across fields (send one of ``phone`` or ``phone_number``; ``audio_id`` for
  ``audio_blast`` and ``press1``), as ``{"allOf": [...]}`` of JSON Schema rules
  (``oneOf``, ``anyOf``, :func:`given`) in a schema class's ``OPENAPI_KEYWORDS``, which
  :class:`SchemaKeywordsPlugin` adds to the schema's component (inside ``allOf``, so
  that they add to the ``properties`` and ``required`` the fields give, never replace them).

Patterns are ECMA-262 regular expressions, as OpenAPI 3.0 wants, written in the part of
the syntax that Python's ``re`` reads alike (tests generate requests from them).
"""

from __future__ import annotations

from copy import deepcopy

from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

#: Text without C0 control characters or DEL (``Text`` and ``Textual`` refuse those).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"

#: A phone number as the views read it: digits, an optional leading ``+``, and the
#: separators the numbering library ignores (space, ``-``, ``.``, parentheses). Whether the
#: digits are a valid number of the account's region is the numbering plan's to say.
PHONE_NUMBER = r"^\+?[0-9 ().-]*[0-9][0-9 ().-]*$"

#: A transfer destination: a phone number or extension, or a ``sip:``/``sips:`` URI of the
#: form the transfer context dials (``gateway.dialplan_names.transfer_target``).
TRANSFER_DESTINATION = (r"^(?:\+?[0-9 ().-]*[0-9][0-9 ().-]*"
                        r"|[Ss][Ii][Pp][Ss]?:[A-Za-z0-9_.!~*+%-]+@[A-Za-z0-9.-]+(?::[0-9]{1,5})?)$")

#: Text with something in it once stripped (at least one printable ASCII character).
NOT_BLANK = r"^[^\x00-\x1f\x7f]*[!-~][^\x00-\x1f\x7f]*$"

#: A verification code: 4 to 8 digits.
OTP_CODE = r"^[0-9]{4,8}$"

#: An OTP message holds the ``{code}`` token: a second pattern, beside the text's own
#: (``{"allOf": [{"pattern": OTP_CODE_TOKEN}]}``).
OTP_CODE_TOKEN = r"\{code\}"

#: A UUID in its usual hyphenated form (``UUID_TEXT`` to build other patterns with).
UUID_TEXT = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
UUID = rf"^{UUID_TEXT}$"

# A host name or IPv4 address: labels of 1 to 63 characters (an empty or longer label is
# no name the resolver can look up); a port from 0 to 65535; then a path, query or
# fragment of printable ASCII.
_HOST = r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
_REST = r"(?:[/?#][!-~]*)?"

#: A bot's WebSocket URL, or a native provider with an optional agent id.
MEDIA_TARGET = (rf"^(?:(?:elevenlabs|vapi)(?:&[A-Za-z0-9][A-Za-z0-9_.:-]{{0,127}})?"
                rf"|wss?://{_HOST}{_PORT}{_REST})$")

#: A customer's HTTP endpoint.
WEBHOOK_URL = rf"^https?://{_HOST}{_PORT}{_REST}$"


def path_parameter(name: str, description: str, schema: dict) -> dict:
    """A path parameter's documentation, for ``blp.route(…, parameters=[…])``: it replaces
    the one the route's converter gives (a plain string)."""
    return {"in": "path", "name": name, "required": True, "description": description, "schema": schema}


def given(name: str, schema: dict) -> dict:
    """The JSON Schema of a body in which ``name`` is present and valid by ``schema``
    (so not null): a branch of ``oneOf``/``anyOf``."""
    return {"required": [name], "properties": {name: schema}}


class SchemaKeywordsPlugin(BasePlugin):
    """Adds a marshmallow schema class's ``OPENAPI_KEYWORDS`` to its component."""

    def schema_helper(self, name, definition, schema=None, **kwargs):
        if schema is None:
            return None
        keywords = getattr(resolve_schema_cls(schema), "OPENAPI_KEYWORDS", None)
        return deepcopy(keywords) if keywords else None
