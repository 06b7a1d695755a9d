"""Escalation from cached results: ``routed`` at any threshold, the ``oracle``, the cost-quality sweep and APGR/CPT.

Nothing here runs a model. Every routed-no-escalation record carries the escalation policy's decisions with their
inputs; the routed system at threshold t replays them through the product's own policy (``decide``, escalation auto):
where the large model starts (a word problem, a general-knowledge answer) the item is large-pipeline's record of it;
where it takes over a draft, its answer is large-pipeline's record of the same item (same route, same passages, same
prompt) and its cost is added on top of the small model's; elsewhere the small model's record stands.

RouteLLM's conventions (Ong et al., 2024): PGR = (accuracy - weak) / (strong - weak), where weak is routed at threshold
0 (no draft escalated; the start decisions as shipped) and strong is large-pipeline; APGR is the area under PGR
against the share of threshold-decided turns sent to the large model (a random router scores 0.5); CPT(x%) is the
smallest such share whose PGR reaches x%.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from assistant.core.decision import CostBudget, Decision, DecisionInputs, Mode, Thresholds, decide

INFINITE = math.inf


def model_seconds(record: dict[str, Any], key: str) -> float:
    """Seconds spent in a record's model calls (``wall_seconds`` or ``cpu_seconds``)."""
    return float(sum(usage.get(key, 0.0) for usage in record.get("usage", [])))


def record_flops(record: dict[str, Any]) -> float:
    """FLOPs of every model call of a record (on the prompt tokens each call evaluated)."""
    return float(sum(usage.get("flops", 0.0) for usage in record.get("usage", [])))


def record_nominal_flops(record: dict[str, Any]) -> float:
    """FLOPs of every model call of a record as if every prompt token sent had been evaluated (records made before
    evaluated tokens were counted have only this figure, under ``flops``)."""
    return float(sum(usage.get("nominal_flops", usage.get("flops", 0.0)) for usage in record.get("usage", [])))


def recorded_inputs(record: dict[str, Any]) -> list[DecisionInputs]:
    """The escalation policy's inputs at each decision of the turn, in order (assistant/core/decision.py).

    Records written before decisions were recorded carry ``can_escalate``: such a turn was one draft decision."""
    if "decisions" in record:
        return [DecisionInputs.from_dict(item["inputs"]) for item in record["decisions"]]
    if record.get("can_escalate"):
        return [DecisionInputs(route=str(record.get("route", "")), stage="draft", mode="never",
                               thresholds=Thresholds(0.0, 0.0), confidence=float(record.get("confidence") or 0.0))]
    return []


def starting_chat(weak: dict[str, dict[str, Any]], chat_start: str) -> dict[str, dict[str, Any]]:
    """``weak``'s records as if CHAT turns started on ``chat_start`` (``assistant.chat_start``): a CHAT turn recorded
    while chat drafted on the small model has no start decision, and with ``large`` gets the one the graph records
    before any model answers (escalation off in this run, so the small model's answer stands there; replayed with
    escalation on, the large model starts; its cost estimate, which only a cost cap reads, is the draft's). Records
    that hold a start decision are left as they are."""
    if chat_start != "large":
        return weak
    started = {}
    for item_id, record in weak.items():
        inputs = recorded_inputs(record)
        if record.get("route") == "CHAT" and inputs and all(point.stage != "start" for point in inputs):
            draft = inputs[0]
            start = DecisionInputs(route="CHAT", stage="start", mode=draft.mode, thresholds=draft.thresholds,
                                   start_tier="large", cost=CostBudget(estimate_usd=draft.cost.estimate_usd,
                                                                       cap_usd=draft.cost.cap_usd))
            record = record | {"decisions": [decide(start).to_dict(), *record.get("decisions", [])]}
        started[item_id] = record
    return started


@dataclass(frozen=True)
class Replay:
    """A recorded turn's decisions made again under other knobs: who ends up answering (``small``: the recorded
    turn stands; ``start``: the large model answers from the start; ``escalate``: it takes over the draft)."""

    outcome: Literal["small", "start", "escalate"]
    decisions: list[Decision]


def replay(recorded: list[DecisionInputs], thresholds: Thresholds, mode: Mode = "auto",
           large_when: Callable[[DecisionInputs], bool] | None = None) -> Replay:
    """The policy's decisions for a turn's ``recorded`` inputs (:func:`recorded_inputs`) under ``mode`` and
    ``thresholds``; ``large_when`` overrides the draft stage's choice (the oracle's)."""
    decisions = []
    for inputs in recorded:
        decision = decide(inputs.under(mode, thresholds))
        if inputs.stage == "draft" and large_when is not None:
            large = large_when(inputs)
            decision = Decision(large, ORACLE_REASON if large else "oracle: the small model's draft stands",
                                decision.inputs)
        decisions.append(decision)
        if decision.large:
            return Replay("start" if inputs.stage == "start" else "escalate", decisions)
    return Replay("small", decisions)


ORACLE_REASON = "oracle: the large model is right, the small wrong"


def draft_confidence(record: dict[str, Any]) -> float | None:
    """The confidence the threshold is compared with for this turn, None when no threshold decides it (the
    calculator, a refusal, or a turn the large model answers from the start)."""
    for inputs in recorded_inputs(record):
        if inputs.stage == "draft":
            return float(inputs.confidence or 0.0)
        if decide(inputs.under("auto", Thresholds(1.0, 1.0))).large:
            return None
    return None


def compose(weak: dict[str, Any], strong: dict[str, Any] | None, outcome: Replay) -> dict[str, Any]:
    """The routed turn (:func:`answered_by`) carrying the replayed decisions."""
    return answered_by(weak, strong, outcome) | {"decisions": [decision.to_dict() for decision in outcome.decisions]}


def answered_by(weak: dict[str, Any], strong: dict[str, Any] | None, outcome: Replay) -> dict[str, Any]:
    """The routed turn's answer and cost: ``weak``'s record, the large model's answer added (``escalate``) or in its
    place (``start``), as ``outcome`` says."""
    if strong is None or outcome.outcome == "small":
        return weak
    reason = "; ".join(dict.fromkeys(decision.reason for decision in outcome.decisions))
    if outcome.outcome == "start":
        return strong | {"escalated": True, "escalation_reason": reason}
    return escalate_record(weak, strong, reason)


def escalate_record(weak: dict[str, Any], strong: dict[str, Any], reason: str) -> dict[str, Any]:
    """``weak``'s turn escalated: the large model's answer from ``strong`` (the same prompt as the live escalation),
    both models' cost and time (strong's routing is weak's, not paid twice)."""
    added = [usage | {"step": "escalate"} for usage in strong.get("usage", []) if usage.get("step") != "route"]
    seconds = {key: sum(usage.get(key, 0.0) for usage in added) for key in ("wall_seconds", "cpu_seconds")}
    return weak | {
        "text": strong.get("text", ""), "escalated": True, "escalation_reason": reason,
        "confidence": strong.get("confidence"), "usage": [*weak.get("usage", []), *added],
        "wall_seconds": round(weak.get("wall_seconds", 0.0) + seconds["wall_seconds"], 4),
        "cpu_seconds": round(weak.get("cpu_seconds", 0.0) + seconds["cpu_seconds"], 4),
        **({"energy_joules": round(weak["energy_joules"] + strong["energy_joules"], 3)}
           if "energy_joules" in weak and "energy_joules" in strong else {}),
        "correct": strong.get("correct"), "exact_match": strong.get("exact_match"), "f1": strong.get("f1"),
    }


def sweep_thresholds(threshold: float, chat_threshold: float | None) -> Thresholds:
    """The thresholds at one point of the sweep: CHAT turns keep ``chat_threshold`` when given."""
    return Thresholds(threshold, threshold if chat_threshold is None else chat_threshold)


def swept(record: dict[str, Any], chat_threshold: float | None) -> bool:
    """Whether the sweep's threshold decides this turn (CHAT turns with their own threshold are not swept)."""
    return draft_confidence(record) is not None and not (record.get("route") == "CHAT" and chat_threshold is not None)


def routed_records(weak: dict[str, dict[str, Any]], strong: dict[str, dict[str, Any]], threshold: float,
                   chat_threshold: float | None = None) -> dict[str, dict[str, Any]]:
    """The routed system's records at ``threshold``: each turn's recorded decisions replayed by the product's policy
    (escalation auto), the large model's answers taken from ``strong`` (items missing from it never escalate)."""
    thresholds = sweep_thresholds(threshold, chat_threshold)
    return {item_id: compose(record, strong.get(item_id), replay(recorded_inputs(record), thresholds))
            for item_id, record in weak.items()}


def oracle_records(weak: dict[str, dict[str, Any]],
                   strong: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The upper bound: the policy's start decisions as shipped, and exactly the drafts the small model got wrong and
    the large model gets right escalated."""
    composed = {}
    for item_id, record in weak.items():
        other = strong.get(item_id)

        def better(inputs: DecisionInputs, record: dict[str, Any] = record,
                   other: dict[str, Any] | None = other) -> bool:
            return (other is not None and record.get("correct") is not None
                    and (record.get("correct") or 0.0) < (other.get("correct") or 0.0))

        composed[item_id] = compose(record, other, replay(recorded_inputs(record), Thresholds(1.0, 1.0),
                                                          large_when=better))
    return composed


def uses_large(record: dict[str, Any]) -> bool:
    """Whether any model call of the turn went to the large tier."""
    return any(usage.get("tier") == "large" for usage in record.get("usage", []))


def accuracy(records: dict[str, dict[str, Any]]) -> float | None:
    """Mean ``correct`` over scored records (chat items have none)."""
    scored = [record["correct"] for record in records.values() if record.get("correct") is not None]
    return sum(scored) / len(scored) if scored else None


@dataclass(frozen=True)
class SweepPoint:
    """The routed system at one threshold."""

    threshold: float
    accuracy: float
    escalated: int
    escalatable: int
    large_share: float
    flops: float
    wall_seconds: float
    pgr: float | None

    @property
    def escalated_share(self) -> float:
        """Share of the escalatable turns sent to the large model."""
        return self.escalated / self.escalatable if self.escalatable else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPoint:
        """The point :meth:`to_dict` wrote."""
        threshold = math.inf if data["threshold"] == "always" else float(data["threshold"])
        return cls(threshold=threshold, accuracy=float(data["accuracy"]), escalated=int(data["escalated"]),
                   escalatable=int(data["escalatable"]), large_share=float(data["large_share"]),
                   flops=float(data["flops"]), wall_seconds=float(data["wall_seconds"]), pgr=data.get("pgr"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the derived share; an infinite threshold becomes the string "always"."""
        data = asdict(self) | {"escalated_share": self.escalated_share}
        if math.isinf(self.threshold):
            data["threshold"] = "always"
        return data


@dataclass(frozen=True)
class Sweep:
    """The cost-quality curve of the routed system and its RouteLLM summary numbers."""

    points: list[SweepPoint]
    weak_accuracy: float
    strong_accuracy: float
    apgr: float | None
    cpt: dict[str, float | None]
    cpt_large_share: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"points": [point.to_dict() for point in self.points], "weak_accuracy": self.weak_accuracy,
                "strong_accuracy": self.strong_accuracy, "apgr": self.apgr, "cpt": self.cpt,
                "cpt_large_share": self.cpt_large_share}


def thresholds(weak: dict[str, dict[str, Any]], chat_threshold: float | None = None) -> list[float]:
    """Every threshold that changes which turns escalate: 0, each distinct confidence, then "always"."""
    confidences = {float(draft_confidence(record) or 0.0) for record in weak.values()
                   if swept(record, chat_threshold)}
    candidates = sorted({0.0, *confidences})
    return [*candidates, INFINITE]


def _point(threshold: float, weak: dict[str, dict[str, Any]], strong: dict[str, dict[str, Any]],
           recorded: dict[str, list[DecisionInputs]], decided: set[str], pgr: Callable[[float], float | None],
           chat_threshold: float | None) -> SweepPoint:
    """The routed system at ``threshold``: each turn replayed once from its ``recorded`` inputs (``decided``: the
    turns the threshold decides)."""
    at = sweep_thresholds(threshold, chat_threshold)
    outcomes = {item_id: replay(recorded[item_id], at) for item_id in weak}
    records = {item_id: answered_by(record, strong.get(item_id), outcomes[item_id])
               for item_id, record in weak.items()}
    value = accuracy(records) or 0.0
    return SweepPoint(
        threshold=threshold, accuracy=value,
        escalated=sum(1 for item_id in decided if outcomes[item_id].outcome == "escalate" and item_id in strong),
        escalatable=len(decided),
        large_share=sum(1 for record in records.values() if uses_large(record)) / max(1, len(records)),
        flops=sum(record_flops(record) for record in records.values()),
        wall_seconds=sum(record.get("wall_seconds", 0.0) for record in records.values()),
        pgr=pgr(value),
    )


def sweep(weak: dict[str, dict[str, Any]], strong: dict[str, dict[str, Any]],
          chat_threshold: float | None = None) -> Sweep:
    """The routed system at every threshold that matters, with APGR and CPT(50%), CPT(80%).

    With ``chat_threshold``, CHAT turns escalate at that fixed threshold at every point (chat is not scored, so
    the sweep cannot tell how much its escalation is worth) and the sweep moves the FACT/MATH threshold.
    """
    weak_accuracy = accuracy(floor_records(weak, strong, chat_threshold)) or 0.0
    strong_accuracy = accuracy({item_id: strong[item_id] for item_id in weak if item_id in strong}) or 0.0
    gap = strong_accuracy - weak_accuracy

    def pgr(value: float) -> float | None:
        return (value - weak_accuracy) / gap if gap > 0 else None

    recorded = {item_id: recorded_inputs(record) for item_id, record in weak.items()}
    decided = {item_id for item_id, record in weak.items() if swept(record, chat_threshold)}
    points = [_point(threshold, weak, strong, recorded, decided, pgr, chat_threshold)
              for threshold in thresholds(weak, chat_threshold)]
    apgr = area_under_pgr(points) if gap > 0 else None
    cpt: dict[str, float | None] = {}
    cpt_large: dict[str, float | None] = {}
    for target in (0.5, 0.8):
        reaching = [point for point in points if point.pgr is not None and point.pgr >= target]
        best = min(reaching, key=lambda point: point.escalated_share) if reaching else None
        cpt[f"{int(target * 100)}%"] = best.escalated_share if best else None
        cpt_large[f"{int(target * 100)}%"] = best.large_share if best else None
    return Sweep(points, weak_accuracy, strong_accuracy, apgr, cpt, cpt_large)


def floor_records(weak: dict[str, dict[str, Any]], strong: dict[str, dict[str, Any]],
                  chat_threshold: float | None = None) -> dict[str, dict[str, Any]]:
    """The routed system with no draft escalated by the swept threshold: PGR's weak end."""
    return routed_records(weak, strong, 0.0, chat_threshold)


def area_under_pgr(points: list[SweepPoint]) -> float:
    """Trapezoid area under PGR over the escalated share, from 0 to 1 (the curve is monotone in the share)."""
    curve = sorted((point.escalated_share, point.pgr or 0.0) for point in points)
    if not curve:
        return 0.0
    if curve[0][0] > 0:
        curve.insert(0, (0.0, 0.0))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        area += (x1 - x0) * (y0 + y1) / 2
    return area


def choose_threshold(points: list[SweepPoint], *, target_escalation: float | None = None,
                     target_accuracy: float | None = None, total_items: int) -> SweepPoint | None:
    """The threshold meeting a target: the most escalation up to ``target_escalation`` (a share of all turns), or
    the least escalation reaching ``target_accuracy``; None when no threshold reaches the accuracy."""
    if target_escalation is not None:
        allowed = [point for point in points if point.escalated / max(1, total_items) <= target_escalation + 1e-12]
        return max(allowed, key=lambda point: (point.escalated, point.threshold)) if allowed else None
    if target_accuracy is not None:
        reaching = [point for point in points if point.accuracy >= target_accuracy - 1e-12]
        return min(reaching, key=lambda point: (point.escalated, point.threshold)) if reaching else None
    raise ValueError("give target_escalation or target_accuracy")
