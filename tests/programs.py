"""Word-problem program replies as a model writes them, for tests with fake models."""

from __future__ import annotations

import json


def program_reply(*steps: tuple[str, str]) -> str:
    """The JSON a model replies with for ``(name, expression)`` steps."""
    return json.dumps({"steps": [{"name": name, "expression": expression} for name, expression in steps]})
