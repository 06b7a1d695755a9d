"""The names of the systems an evaluation compares (kept import-light for the command line)."""

from __future__ import annotations

# Systems that call models, in the order a run executes them.
RUN_SYSTEMS = ("routed-no-escalation", "large-pipeline", "large-only", "small-only")
# Systems composed from other systems' cached records, with what they need.
COMPOSED_SYSTEMS = {"routed": ("routed-no-escalation", "large-pipeline"),
                    "oracle": ("routed-no-escalation", "large-pipeline")}
ALL_SYSTEMS = ("large-only", "large-pipeline", "small-only", "routed", "routed-no-escalation", "oracle")
DEFAULT_SYSTEMS = ALL_SYSTEMS
