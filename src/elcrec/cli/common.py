"""What several commands share: their `--settings` argument, completed and checked."""

from __future__ import annotations

import json
from pathlib import Path

from elcrec import ElcrecError


def settings_argument(text: str) -> dict:
    """--settings takes JSON or @path/to/file.json."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise ElcrecError(f"--settings: not valid JSON ({error})") from error
    if not isinstance(settings, dict):
        raise ElcrecError("--settings: expected a JSON object")
    return settings


def full_settings(model: str, given: dict) -> dict:
    """Settings as given, completed from the model's defaults; unknown keys and bad values are errors."""
    from elcrec.settings import check, model_defaults

    defaults = model_defaults(model)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ElcrecError(f"--settings: unknown setting(s) {unknown} for model {model!r}; known: {sorted(defaults)}")
    check(given, "--settings", model)
    return defaults | given
