"""The one escalation policy: which tier answers, at every point of a turn where the large model could.

:func:`decide` is a pure function of a :class:`DecisionInputs` (route, stage, calibrated confidence, mode, thresholds,
cost budget). The graph calls it at every node that may use the large model, and records each decision on the turn;
the evaluation replays the recorded inputs through the same function to compose the routed system from cached runs
(eval/sweep.py), so what is measured is what ships.

Stages:

- ``calculator``: plain arithmetic; the calculator's answer is exact, no model answers.
- ``refusal``: the documents do not answer a question about them; no model answers (an invention would follow).
- ``start``: before any model answers a word problem, a general-knowledge question or a chat turn: which tier starts
  (``start_tier`` is the configured choice; the large one unless escalation is off or the cost cap forbids it).
- ``draft``: the small model has answered; its answer goes to the large model when the calibrated confidence is
  below the route's threshold, unless escalation is off or the cost cap forbids it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Mode = Literal["auto", "never", "always"]
Stage = Literal["calculator", "refusal", "start", "draft"]
Tier = Literal["small", "large"]
STAGES: tuple[Stage, ...] = ("calculator", "refusal", "start", "draft")


@dataclass(frozen=True)
class Thresholds:
    """Confidence thresholds: ``chat`` for CHAT turns, ``default`` for every other route."""

    default: float
    chat: float

    def for_route(self, route: str) -> float:
        """The threshold a turn on ``route`` is held to."""
        return self.chat if route == "CHAT" else self.default

    @classmethod
    def single(cls, value: float) -> Thresholds:
        """One threshold for every route (a request's own ``threshold``)."""
        return cls(value, value)


@dataclass(frozen=True)
class CostBudget:
    """What the turn has spent, what the large model's call would cost (an over-estimate), and the cap (None: no
    cap), in US dollars."""

    spent_usd: float = 0.0
    estimate_usd: float = 0.0
    cap_usd: float | None = None

    @property
    def allows_large(self) -> bool:
        """Whether the large model's call fits under the cap."""
        return self.cap_usd is None or self.spent_usd + self.estimate_usd <= self.cap_usd

    def refusal(self) -> str:
        """Why the cap forbids the call ("" when it does not)."""
        if self.allows_large:
            return ""
        return f"the large model (~${self.estimate_usd:.6f}) would pass the cost cap ${self.cap_usd:.6f}"


@dataclass(frozen=True)
class DecisionInputs:
    """Everything :func:`decide` reads. ``confidence`` is None before any model has answered (``start``)."""

    route: str
    stage: Stage
    mode: Mode
    thresholds: Thresholds
    confidence: float | None = None
    start_tier: Tier = "large"
    cost: CostBudget = CostBudget()

    @property
    def threshold(self) -> float:
        """The threshold this turn's route is held to."""
        return self.thresholds.for_route(self.route)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the checkpoint, the answer's details, eval records)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionInputs:
        """The inputs :meth:`to_dict` wrote."""
        return cls(route=str(data["route"]), stage=data["stage"], mode=data["mode"],
                   thresholds=Thresholds(**data["thresholds"]), confidence=data.get("confidence"),
                   start_tier=data.get("start_tier", "large"), cost=CostBudget(**data.get("cost", {})))

    def under(self, mode: Mode, thresholds: Thresholds, cap_usd: float | None = None) -> DecisionInputs:
        """The same point of the same turn under another mode, thresholds and cap (how the evaluation replays it)."""
        return replace(self, mode=mode, thresholds=thresholds, cost=replace(self.cost, cap_usd=cap_usd))


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` chose: ``large`` = the large model answers (starts, or takes over the small one's draft)."""

    large: bool
    reason: str
    inputs: DecisionInputs

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"large": self.large, "reason": self.reason, "inputs": self.inputs.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """The decision :meth:`to_dict` wrote."""
        return cls(bool(data["large"]), str(data["reason"]), DecisionInputs.from_dict(data["inputs"]))


WORD_PROBLEMS_TO_LARGE = ("word problems go to the large model: the small model's program-of-thought was measured "
                          "right 4-12% of the time (docs/BENCHMARKS.md)")
CHAT_TO_LARGE = "free answers start on the large model (assistant.chat_start = large): no small draft"
GENERAL_TO_LARGE = ("the documents do not answer this and it is about the public world: the large model answers from "
                    "general knowledge (the small model's closed-book answers were wrong where the large one's were "
                    "right, docs/BENCHMARKS.md)")


def decide(inputs: DecisionInputs) -> Decision:
    """Whether the large model answers at this point of the turn, and why."""
    mode, stage, cost = inputs.mode, inputs.stage, inputs.cost
    if stage == "calculator":
        return Decision(False, "plain arithmetic: the calculator's answer is exact", inputs)
    if stage == "refusal":
        return Decision(False, "the documents do not answer a question about them: no model answers", inputs)
    if stage == "start":
        if mode == "never":
            return Decision(False, "escalation disabled for this request: the small model answers", inputs)
        if mode == "always":
            return Decision(True, "escalation forced for this request", inputs)
        if inputs.start_tier == "small":
            return Decision(False, "the small model is configured to answer first", inputs)
        why = {"MATH": WORD_PROBLEMS_TO_LARGE, "CHAT": CHAT_TO_LARGE}.get(inputs.route, GENERAL_TO_LARGE)
        if not cost.allows_large:
            return Decision(False, f"{cost.refusal()}: the small model answers", inputs)
        return Decision(True, why, inputs)
    confidence, threshold = inputs.confidence or 0.0, inputs.threshold
    if mode == "never":
        return Decision(False, f"escalation disabled for this request (confidence {confidence:.2f})", inputs)
    if mode == "always":
        return Decision(True, "escalation forced for this request", inputs)
    if confidence >= threshold:
        return Decision(False, f"confidence {confidence:.2f} >= threshold {threshold:.2f}", inputs)
    if not cost.allows_large:
        return Decision(False, f"confidence {confidence:.2f} < threshold {threshold:.2f}, but {cost.refusal()}",
                        inputs)
    return Decision(True, f"confidence {confidence:.2f} < threshold {threshold:.2f}", inputs)


def joined_reasons(reasons: list[str]) -> str:
    """A turn's decisions' reasons, in order and each said once: a later reason with the same head (its words before
    ``:`` or `` (``, as "escalation disabled for this request") takes the earlier one's place, since it knows more
    (the draft's confidence)."""
    by_head: dict[str, str] = {}
    for reason in reasons:
        if reason:
            by_head[re.split(r":| \(", reason, maxsplit=1)[0]] = reason
    return "; ".join(by_head.values())
