"""JSON Schema for producers: one schema per event type, inside the envelope."""

from __future__ import annotations

from typing import Any

from .models import EVENT_MODELS

__all__ = ["json_schema"]


def _event_schema(event_type: str) -> dict[str, Any]:
    data_schema = EVENT_MODELS[event_type].model_json_schema()
    defs = data_schema.pop("$defs", {})
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": event_type},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "data": data_schema,
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


def json_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) accepting any event the engine accepts."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "esafety CloudEvents 1.0 event",
        "oneOf": [_event_schema(t) for t in sorted(EVENT_MODELS)],
    }
