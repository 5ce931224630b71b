"""A config that breaks its schema, said in one line.

jsonschema's own message is followed by the whole schema and the whole instance: for
config/config.yaml some 400 lines, so the one line that matters (which key, what was wrong)
scrolls off the screen before the user reads it. The workflow validates with Snakemake (which
also fills in the schema's defaults) and turns the error into this line.
"""

from __future__ import annotations

import difflib
from typing import Any


def key_path(parts: Any) -> str:
    """`download.retries`, `datasets.sports.sources[0].sha256`: the path as the YAML reads."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def describe(error: Any, what: str = "config") -> str:
    """One line for a jsonschema ValidationError: where, what was wrong, and for an unknown key
    the closest known one and the keys allowed there."""
    path = key_path(error.absolute_path)
    where = f"{what} {path}" if path else what
    known = error.schema.get("properties") if isinstance(error.schema, dict) else None
    if error.validator == "additionalProperties" and isinstance(known, dict) and isinstance(error.instance, dict):
        unknown = sorted(str(key) for key in error.instance if key not in known)
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(known), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        noun = "an unknown key" if len(unknown) == 1 else "unknown keys"
        return f"{where}: {noun} {', '.join(hints)}; allowed here: {', '.join(sorted(known))}"
    message = error.message
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description:
        message += f" ({' '.join(str(description).split())})"
    return f"{where}: {message}"
