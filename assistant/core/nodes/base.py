"""What every node of the graph shares: the turn's state, the graph's dependencies, the policy's decision at
any point of a turn, and the helpers that record trace, usage and streamed text.

State values are plain JSON-like data so the SQLite checkpointer stores them with strict msgpack. Every node
appends one entry to ``trace`` (its name, milliseconds, and what it decided); model calls append to ``usage``.
Tokens are streamed through LangGraph's custom stream as ``{"token": text, "model": alias}``."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer

from assistant.core.decision import CostBudget, Decision, DecisionInputs, Mode, Stage, Thresholds, Tier, decide
from assistant.core.escalation import EMPTY_MODEL, EscalationModel
from assistant.core.passages import SentenceSimilarity
from assistant.core.routing import Router
from assistant.core.settings import AssistantSettings
from models.base import ChatModel, Completion, Message, cancellable, collect_stream
from retrieval.retriever import Hit
from tools.calculator import CalcResult

Escalation = Mode
Search = Callable[[str, int], list[Hit]]
Calculator = Callable[[str], CalcResult]


class TurnState(TypedDict, total=False):
    """One turn's state; ``messages`` (the thread's history) accumulates across turns via the checkpointer."""

    question: str
    request_id: str
    escalation: Escalation
    threshold: float | None
    cost_cap_usd: float | None
    max_tokens: int | None
    system_prompt: str
    answer_with: str | None
    temperature: float | None
    messages: Annotated[list[dict[str, str]], operator.add]
    route: str
    route_stage: str
    route_reason: str
    expression: str | None
    sources: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    draft: str
    answer: str
    confidence: float
    signals: dict[str, float]
    features: dict[str, float]
    answerable: float | None
    escalated: bool
    escalation_reason: str
    decisions: list[dict[str, Any]]
    calculation: dict[str, Any] | None
    working: str
    usage: list[dict[str, Any]]
    trace: list[dict[str, Any]]


@dataclass
class GraphDeps:
    """What the graph needs: both model tiers, the router, a search function and the calculator."""

    small: ChatModel
    large: ChatModel
    router: Router
    search: Search
    calculate: Calculator
    settings: AssistantSettings
    cancelled: Callable[[str], bool] = lambda request_id: False
    similarity: SentenceSimilarity | None = None
    escalation_model: EscalationModel = EMPTY_MODEL


def step_trace(state: TurnState, name: str, started: float, **details: Any) -> list[dict[str, Any]]:
    """The turn's trace with this node's entry added: its name, milliseconds since ``started``, what it decided."""
    entry = {"step": name, "ms": round((time.perf_counter() - started) * 1000, 3), **details}
    return [*state.get("trace", []), entry]


def with_usage(state: TurnState, step: str, tier: str, completion: Completion) -> list[dict[str, Any]]:
    """The turn's model calls with this one added."""
    return [*state.get("usage", []), usage_entry(step, tier, completion)]


def usage_entry(step: str, tier: str, completion: Completion) -> dict[str, Any]:
    """One model call as the state records it (read back as :class:`assistant.core.answer.ModelCall`)."""
    return {"step": step, "tier": tier, "finish_reason": completion.finish_reason, **completion.usage.to_dict()}


def budget(state: TurnState, setting: int) -> int:
    """The answer's token budget: the setting, lowered by the request's own ``max_tokens``."""
    requested = state.get("max_tokens")
    return min(setting, requested) if requested else setting


def stream_model(model: ChatModel, tier: str, messages: list[Message], cancelled: Callable[[], bool],
                 *, forward: bool = True, **options: Any) -> Completion:
    """Call the model, forwarding its tokens to LangGraph's custom stream (a no-op outside streaming; none with
    ``forward`` false: text that must be checked before anyone sees it).

    ``cancelled`` is checked before every token; when it turns true the model's generator is closed (llama.cpp
    stops generating) and the turn ends with GenerationCancelledError.
    """
    writer = stream_writer() if forward else None
    return collect_stream(cancellable(model.stream(messages, **options), cancelled),
                          None if writer is None else lambda text: writer({"token": text, "model": tier}))


def stream_writer() -> Callable[[dict[str, Any]], None] | None:
    """The running turn's LangGraph custom stream writer; None when the turn is not streamed."""
    try:
        return get_stream_writer()
    except RuntimeError:
        return None


def reset_shown(text: str = "") -> None:
    """Tell the stream's readers that what they have shown of this turn is replaced by ``text`` (a discarded draft,
    or a checked general-knowledge answer with its label); tokens that follow are appended to it."""
    if (writer := stream_writer()) is not None:
        writer({"event": "reset", "text": text})


def prompt_tokens_estimate(messages: list[Message]) -> int:
    """An over-estimate of a prompt's tokens before any model has read it (about 4 characters make a token in
    English; 3 are counted, so a cost cap stays a cap)."""
    return sum(len(message["content"]) // 3 + 4 for message in messages)


def calculator_text(result: CalcResult) -> str:
    """A calculator result as people read it: the decimal first ("397.8", not "1989/5"); when the decimal is
    rounded, marked so and followed by the exact form ("≈ 0.333333333333333 (exactly 1/3)"). The exact form is
    always in ``Answer.calculation``."""
    if result.exact == result.decimal:
        return result.exact
    if _same_number(result.exact, result.decimal):
        return result.decimal
    return f"≈ {result.decimal} (exactly {result.exact})"


def _same_number(exact: str, decimal: str) -> bool:
    """Whether the decimal rendering is the exact value itself (1989/5 and 397.8), not a rounding of it."""
    try:
        return Fraction(exact.replace(",", "")) == Fraction(decimal.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return False


def final(state: TurnState, answer: str) -> TurnState:
    """The turn's answer and the two messages it adds to the thread."""
    return {"answer": answer, "messages": [{"role": "user", "content": state["question"]},
                                           {"role": "assistant", "content": answer}]}


class NodeBase:
    """The graph's dependencies and settings, and the escalation policy's decision at any point of a turn."""

    def __init__(self, deps: GraphDeps) -> None:
        self.deps = deps
        self.settings = deps.settings

    def _cancelled(self, state: TurnState) -> Callable[[], bool]:
        request_id = state.get("request_id", "")
        return lambda: self.deps.cancelled(request_id)

    def _decide(self, state: TurnState, stage: Stage, confidence: float | None = None, prompt_tokens: int = 0,
                max_tokens: int = 0, start_tier: Tier = "large") -> tuple[Decision, TurnState]:
        """The policy's decision at this point of the turn (``prompt_tokens`` + ``max_tokens``: the large model's
        call it would make), and the state update recording it."""
        requested = state.get("threshold")
        thresholds = (Thresholds.single(requested) if requested is not None
                      else Thresholds(self.settings.threshold, self.settings.chat_threshold))
        price = float(getattr(self.deps.large, "price_per_million_tokens", 0.0))
        cost = CostBudget(spent_usd=round(sum(item.get("cost_usd", 0.0) for item in state.get("usage", [])), 9),
                          estimate_usd=round((prompt_tokens + max_tokens) * price / 1_000_000, 9),
                          cap_usd=state.get("cost_cap_usd"))
        decision = decide(DecisionInputs(route=state["route"], stage=stage, mode=state.get("escalation", "auto"),
                                         thresholds=thresholds, confidence=confidence, start_tier=start_tier,
                                         cost=cost))
        return decision, {"decisions": [*state.get("decisions", []), decision.to_dict()]}
