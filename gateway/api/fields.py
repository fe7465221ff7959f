"""Marshmallow fields the surfaces' schemas share."""
from __future__ import annotations

from datetime import timezone

import marshmallow as ma

from gateway.api.openapi import NO_CONTROL

# Characters never accepted in a text field: C0 controls (NUL included, which PostgreSQL
# refuses in text) and DEL.
_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}


def has_control_characters(text: str) -> bool:
    return any(ch in _CONTROL for ch in text)


class Text(ma.fields.String):
    """A string without control characters; the OpenAPI document says so with a pattern,
    unless the field declares a narrower one (``gateway.api.openapi``)."""

    default_error_messages = {"control": "Must not contain control characters."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metadata = {"pattern": NO_CONTROL, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if has_control_characters(text):
            raise self.make_error("control")
        return text


class UTCDateTime(ma.fields.DateTime):
    """An aware datetime written as ``2026-05-24T10:30:00Z``."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
