"""Configs and records as JSON: one spelling, so equal configs give equal strings."""

from __future__ import annotations

import json
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as JSON reads it back: tuples become lists, in dicts and lists too."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def config_json(config: dict[str, Any]) -> str:
    """A config as one canonical line of JSON (keys sorted)."""
    return json.dumps(jsonable(config), sort_keys=True)
