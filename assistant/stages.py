"""What a turn is doing while nothing is written yet: the stage that follows each of its events, for people.

A word problem's large model may think for 15 s before its first word, and a documents answer is held until it is
final: a reader shows the stage (``searching your documents``, ``asking the larger model``) instead of a bare cursor.
:func:`stage_after` reads the turn's own events (``Assistant.stream``): the graph's step events and its escalation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

StageName = Literal["routing", "retrieving", "reading", "computing", "working", "drafting", "checking", "escalating"]


@dataclass(frozen=True)
class Stage:
    """A stage of a turn: a stable ``name`` for programs and a ``label`` for people."""

    name: StageName
    label: str

    def to_dict(self) -> dict[str, str]:
        """The stream's ``x_assistant`` payload."""
        return {"event": "stage", "stage": self.name, "label": self.label}


ROUTING = Stage("routing", "choosing how to answer")
RETRIEVING = Stage("retrieving", "searching your documents")
READING = Stage("reading", "reading the passages")
COMPUTING = Stage("computing", "computing")
WORKING = Stage("working", "working it out with the calculator")
DRAFTING = Stage("drafting", "writing")
CHECKING = Stage("checking", "checking the answer")
ESCALATING = Stage("escalating", "asking the larger model")

_AFTER_ROUTE = {"FACT": RETRIEVING, "CHAT": DRAFTING}
_CHECKED = ("answer_fact", "chat", "calculate", "word_problem")


def stage_after(event: dict[str, Any]) -> Stage | None:
    """The stage a turn enters after ``event``, or None when the event starts none (tokens, the answer)."""
    kind = event.get("type")
    if kind == "start":
        return ROUTING
    if kind == "escalate":
        return ESCALATING
    if kind != "step":
        return None
    step, detail = event.get("step"), event.get("detail") or {}
    if step == "route":
        if detail.get("route") == "MATH":
            return COMPUTING if detail.get("stage") == "calculator" else WORKING
        return _AFTER_ROUTE.get(str(detail.get("route")))
    if step == "retrieve":
        return READING
    if step in _CHECKED:
        return CHECKING
    return None
