"""The routing graph (LangGraph): route -> calculate | word problem | retrieve -> answer | general | chat -> check
-> escalate?

A FACT turn whose documents do not answer the question (the learned ``answerable`` model, from retrieval features
alone) goes to ``general``: a closed-book answer labelled as not coming from the documents, citing nothing.

``check`` ends the turn itself when it keeps the draft, and ``escalate`` ends it with the large model's answer:
every superstep after a model call runs with caches the model has just flushed, so the turn takes as few as it can.

State values are plain JSON-like data so the SQLite checkpointer stores them with strict msgpack. Every node
appends one entry to ``trace`` (its name, milliseconds, and what it decided); model calls append to ``usage``.
Tokens are streamed through LangGraph's custom stream as ``{"token": text, "model": alias}``.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from assistant.core.confidence import agreement, heuristic_fact_confidence
from assistant.core.decision import CostBudget, Decision, DecisionInputs, Mode, Stage, Thresholds, Tier, decide
from assistant.core.escalation import EMPTY_MODEL, EscalationModel
from assistant.core.features import (
    answerability_features,
    chat_features,
    fact_features,
    matches_documents,
    program_features,
    speaks_of,
    working_features,
)
from assistant.core.passages import Evidence, SentenceSimilarity, cite, numbered, select_evidence, supporting_quote
from assistant.core.program import PROGRAM_SCHEMA, ProgramError, evaluate_program
from assistant.core.prompts import (
    GENERAL_KNOWLEDGE_LABEL,
    NOT_FOUND,
    NOT_IN_DOCUMENTS,
    chat_messages,
    fact_messages,
    general_messages,
    program_messages,
)
from assistant.core.routing import ROUTES, RouteDecision, Router
from assistant.core.settings import AssistantSettings
from assistant.core.working import STOPS_ESTIMATE, format_answer, implied_unit, work, working_messages
from models.base import ChatModel, Completion, Message, cancellable, collect_stream
from retrieval.retriever import Hit
from tools.calculator import CalcResult
from tools.errors import CalculatorError

Escalation = Mode
Search = Callable[[str, int], list[Hit]]
Calculator = Callable[[str], CalcResult]
PROGRAM_MAX_TOKENS = 256
UNTRAINED_WORKING_CONFIDENCE = {True: 0.77, False: 0.48}
"""A working's confidence when no ``working_<tier>`` model is fitted: the share of the large model's workings that
were right on word-problems-dev with the final number written by the calculator and without (docs/BENCHMARKS.md)."""


class TurnState(TypedDict, total=False):
    """One turn's state; ``messages`` (the thread's history) accumulates across turns via the checkpointer."""

    question: str
    request_id: str
    escalation: Escalation
    threshold: float | None
    cost_cap_usd: float | None
    max_tokens: int | None
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


def _step(state: TurnState, name: str, started: float, **details: Any) -> list[dict[str, Any]]:
    entry = {"step": name, "ms": round((time.perf_counter() - started) * 1000, 3), **details}
    return [*state.get("trace", []), entry]


def _usage(state: TurnState, step: str, tier: str, completion: Completion) -> list[dict[str, Any]]:
    return [*state.get("usage", []), _usage_entry(step, tier, completion)]


def _usage_entry(step: str, tier: str, completion: Completion) -> dict[str, Any]:
    return {"step": step, "tier": tier, "finish_reason": completion.finish_reason, **completion.usage.to_dict()}


def _budget(state: TurnState, setting: int) -> int:
    """The answer's token budget: the setting, lowered by the request's own ``max_tokens``."""
    requested = state.get("max_tokens")
    return min(setting, requested) if requested else setting


def _stream(model: ChatModel, tier: str, messages: list[Message], cancelled: Callable[[], bool],
            **options: Any) -> Completion:
    """Call the model, forwarding its tokens to LangGraph's custom stream (a no-op outside streaming).

    ``cancelled`` is checked before every token; when it turns true the model's generator is closed (llama.cpp
    stops generating) and the turn ends with GenerationCancelledError.
    """
    writer = _writer()
    return collect_stream(cancellable(model.stream(messages, **options), cancelled),
                          None if writer is None else lambda text: writer({"token": text, "model": tier}))


def _writer() -> Callable[[dict[str, Any]], None] | None:
    """The running turn's LangGraph custom stream writer; None when the turn is not streamed."""
    try:
        return get_stream_writer()
    except RuntimeError:
        return None


def _reset(text: str = "") -> None:
    """Tell the stream's readers that what they have shown of this turn is replaced by ``text`` (a discarded draft,
    or the general-knowledge label an answer starts with); tokens that follow are appended to it."""
    if (writer := _writer()) is not None:
        writer({"event": "reset", "text": text})


def _prompt_tokens(messages: list[Message]) -> int:
    """An over-estimate of a prompt's tokens before any model has read it (about 4 characters make a token in
    English; 3 are counted, so a cost cap stays a cap)."""
    return sum(len(message["content"]) // 3 + 4 for message in messages)


def _format(result: CalcResult) -> str:
    return result.exact if result.exact == result.decimal else f"{result.exact} (≈ {result.decimal})"


class _Nodes:
    def __init__(self, deps: GraphDeps) -> None:
        self.deps = deps
        self.settings = deps.settings

    def _cancelled(self, state: TurnState) -> Callable[[], bool]:
        request_id = state.get("request_id", "")
        return lambda: self.deps.cancelled(request_id)

    # ---- routing ---------------------------------------------------------------------------------

    def route(self, state: TurnState) -> TurnState:
        started = time.perf_counter()
        # In a thread the checkpoint still holds the last turn's route until this node replaces it.
        last = state.get("route") if state.get("messages") else None
        previous = last if last in ROUTES else None
        decision: RouteDecision = self.deps.router.route(state["question"], previous)
        if decision.route == "CHAT" and self._documents_match(state["question"]):
            decision = replace(decision, route="FACT", stage="documents",
                               reason=f"{decision.reason}; but the documents speak of what it names "
                                      f"(coverage >= {self.settings.route_coverage:.2f})")
        update: TurnState = {
            "route": decision.route, "route_stage": decision.stage, "route_reason": decision.reason,
            "expression": decision.expression, "sources": [], "evidence": [], "draft": "", "answer": "",
            "confidence": 0.0, "signals": {}, "features": {}, "answerable": None, "escalated": False,
            "escalation_reason": "", "decisions": [], "calculation": None, "working": "",
            "usage": [], "trace": [],
        }
        if decision.usage is not None:
            update["usage"] = [{"step": "route", "tier": "small", **decision.usage.to_dict()}]
        update["trace"] = _step({}, "route", started, route=decision.route, stage=decision.stage,
                                scores=decision.scores)
        return update

    def _documents_match(self, question: str) -> bool:
        """Whether a question the router sent to chat names what the documents speak of (retrieval takes
        milliseconds; the retrieved text never enters the routing prompt)."""
        if self.settings.route_coverage > 1:
            return False
        sources = [hit.to_dict() for hit in self.deps.search(question, self.settings.fact_k)]
        return matches_documents(question, sources, self.settings.route_coverage, self.settings.route_dense)

    @staticmethod
    def after_route(state: TurnState) -> str:
        if state["route"] == "MATH":
            return "calculate" if state.get("expression") else "word_problem"
        return "retrieve" if state["route"] == "FACT" else "chat"

    # ---- MATH ------------------------------------------------------------------------------------

    def calculate(self, state: TurnState) -> TurnState:
        started = time.perf_counter()
        expression = state.get("expression") or ""
        try:
            result = self.deps.calculate(expression)
        except CalculatorError as error:
            return {"draft": f"The calculator could not evaluate {expression}: {error.message}", "confidence": 0.0,
                    "signals": {"calculator": 0.0}, "trace": _step(state, "calculate", started, ok=False)}
        return {"draft": _format(result), "confidence": 1.0, "signals": {"calculator": 1.0},
                "calculation": result.to_dict(), "trace": _step(state, "calculate", started, ok=True)}

    def _program_turn(self, state: TurnState, model: ChatModel, tier: str, samples: int, step: str) -> TurnState:
        """``samples`` programs from ``model`` (the first greedy) run by the calculator; the most agreed value wins."""
        started = time.perf_counter()
        usage = list(state.get("usage", []))
        results: list[CalcResult | None] = []
        programs: list[str] = []
        first: Completion | None = None
        for index in range(samples):
            completion = model.chat(program_messages(state["question"]), max_tokens=PROGRAM_MAX_TOKENS,
                                    temperature=0.0 if index == 0 else 0.7, json_schema=PROGRAM_SCHEMA)
            usage.append(_usage_entry(step, tier, completion))
            first = first or completion
            programs.append(completion.text)
            try:
                results.append(evaluate_program(completion.text, self.deps.calculate))
            except ProgramError:
                results.append(None)
        values = [result.exact if result else None for result in results]
        share = agreement(values)
        features = program_features(programs, results, share, first.token_probabilities if first else [])
        update: TurnState = {"usage": usage, "features": features,
                             "trace": _step(state, step, started, tier=tier, programs=programs)}
        successful = [result for result in results if result is not None]
        if not successful:
            return update | {"draft": "I could not turn this into a calculation.", "confidence": 0.0,
                             "signals": {"agreement": 0.0, "calculator": 0.0}, "calculation": None}
        best = max(successful, key=lambda result: values.count(result.exact))
        learned = self.deps.escalation_model.probability(f"program_{tier}", features)
        confidence = round(share if learned is None else learned, 4)
        return update | {"draft": _format(best), "confidence": confidence, "expression": best.expression,
                         "signals": {"agreement": round(share, 4), "calculator": 1.0, "samples": float(len(results)),
                                     **({} if learned is None else {"p_correct": confidence})},
                         "calculation": best.to_dict() | {"sampled_programs": programs}}

    def _working_turn(self, state: TurnState, model: ChatModel, tier: str, step: str) -> TurnState:
        """The model works the problem in prose, the calculator writing every result; the working streams as
        ``working`` events and the answer is its final number with the question's unit."""
        started = time.perf_counter()
        writer = _writer()

        def emit(text: str) -> None:
            if writer is not None:
                writer({"working": text, "model": tier})

        done = work(model, state["question"], self.deps.calculate, max_tokens=self.settings.word_problem_max_tokens,
                    emit=emit, cancelled=self._cancelled(state))
        usage = [*state.get("usage", []), *(_usage_entry(step, tier, completion) for completion in done.completions)]
        features = working_features(done)
        update: TurnState = {"usage": usage, "features": features, "working": done.text,
                             "trace": _step(state, step, started, tier=tier, pieces=len(done.completions),
                                            results=len(done.results), checked=done.checked)}
        if done.value is None:
            why = "it ran out of room" if done.finish_reason == "length" else "it reached no number"
            return update | {"draft": f"I could not work this out ({why}; the working is shown).", "confidence": 0.0,
                             "signals": {"calculator": 0.0}, "calculation": None}
        learned = self.deps.escalation_model.probability(f"working_{tier}", features)
        # untrained: how often the large model's working was right on dev with and without a checked answer
        confidence = round(learned if learned is not None else UNTRAINED_WORKING_CONFIDENCE[done.checked], 4)
        answer = format_answer(done.value, implied_unit(state["question"]))
        return update | {"draft": answer, "confidence": confidence,
                         "signals": {"calculator": 1.0 if done.checked else 0.0,
                                     **({} if learned is None else {"p_correct": confidence})},
                         "calculation": {"value": str(done.value), "checked": done.checked,
                                         "results": [result.to_dict() for result in done.results]}}

    def _solve(self, state: TurnState, model: ChatModel, tier: str, step: str, samples: int = 1) -> TurnState:
        if self.settings.word_problem_method == "program":
            return self._program_turn(state, model, tier, samples, step)
        return self._working_turn(state, model, tier, step)

    def _solving_estimate(self, question: str) -> tuple[int, int]:
        """(prompt tokens, output tokens) a word problem's solution is expected to send and write, for the cap."""
        if self.settings.word_problem_method == "program":
            return _prompt_tokens(program_messages(question)), PROGRAM_MAX_TOKENS
        return (_prompt_tokens(working_messages(question)) * STOPS_ESTIMATE,
                self.settings.word_problem_max_tokens)

    def word_problem(self, state: TurnState) -> TurnState:
        """The tier the policy starts with solves it (the large one unless escalation is off, the settings say
        small, or the cost cap forbids it); a small model's solution is checked like any draft."""
        decision, decided = self._decide(state, "start", None, *self._solving_estimate(state["question"]),
                                         start_tier=self.settings.word_problems)
        if decision.large:
            update = self._solve(state, self.deps.large, "large", "word_problem")
        else:
            update = self._solve(state, self.deps.small, "small", "word_problem", self.settings.word_problem_samples)
        return update | decided | {"escalated": decision.large}

    # ---- FACT ------------------------------------------------------------------------------------

    def retrieve(self, state: TurnState) -> TurnState:
        started = time.perf_counter()
        hits = self.deps.search(state["question"], self.settings.fact_k)
        evidence = select_evidence(state["question"], hits, self.settings.evidence_chars,
                                   self.settings.evidence_chunks, method=self.settings.evidence_method,
                                   similarity=self.deps.similarity)
        sources = [hit.to_dict() | {"used": any(item.chunk_id == hit.chunk_id for item in evidence)} for hit in hits]
        features = answerability_features(state["question"], sources, " ".join(item.text for item in evidence))
        answerable = self.deps.escalation_model.probability("answerable", features)
        return {"sources": sources, "evidence": [asdict(item) for item in evidence], "features": features,
                "answerable": None if answerable is None else round(answerable, 4),
                "trace": _step(state, "retrieve", started, hits=len(hits), evidence=len(evidence),
                               answerable=answerable)}

    def after_retrieve(self, state: TurnState) -> str:
        answerable = state.get("answerable")
        if answerable is not None and answerable < self.settings.answerable_threshold:
            return "general"
        return "answer_fact"

    def about_documents(self, state: TurnState) -> bool:
        """Whether the question names what the documents speak of (then no general-knowledge answer is given: a
        model cannot know a private policy, product or person)."""
        if self.settings.general_knowledge == "never":
            return True
        return speaks_of(state["question"], state.get("sources", []), self.settings.documents_coverage,
                         self.settings.documents_dense)

    def general(self, state: TurnState) -> TurnState:
        """The documents do not answer the question. About the documents: say so plainly, no model called, the
        closest passages kept as sources. About the public world: the large model answers closed-book, labelled,
        citing nothing (the small one only when escalation is off or the cost cap forbids the large one: its
        closed-book answers were wrong where the large one's were right, and its token probabilities do not tell;
        docs/BENCHMARKS.md). When the answering model's 10th-percentile token probability is below
        ``general_confidence`` it does not know (a private name, product or policy): the refusal stands."""
        if self.about_documents(state):
            _, decided = self._decide(state, "refusal")
            return self._not_in_documents(state | decided, "it is about them") | decided
        started = time.perf_counter()
        usage = list(state.get("usage", []))
        messages, max_tokens = general_messages(state["question"]), _budget(state, self.settings.fact_max_tokens)
        decision, decided = self._decide(state, "start", None, _prompt_tokens(messages), max_tokens)
        tier: Tier = "large" if decision.large else "small"
        model = self.deps.large if decision.large else self.deps.small
        _reset(f"{GENERAL_KNOWLEDGE_LABEL} ")
        completion = _stream(model, tier, messages, self._cancelled(state), max_tokens=max_tokens, temperature=0.0)
        usage.append(_usage_entry("general", tier, completion))
        text = completion.text.strip()
        features = chat_features(state["question"], text, completion.token_probabilities,
                                 finish_reason=completion.finish_reason)
        confidence = round(features["p10"], 4)
        update: TurnState = {"usage": usage, "escalated": decision.large, **decided,
                             "features": state.get("features", {}) | {f"general_{k}": v for k, v in features.items()}}
        if confidence < self.settings.general_confidence or not text:
            why = (f"the {tier} model does not know it either (10th-percentile token probability {confidence:.2f} < "
                   f"{self.settings.general_confidence:.2f}); {decision.reason}")
            return self._not_in_documents(state | update, why) | update
        answer = f"{GENERAL_KNOWLEDGE_LABEL} {text}"
        reason = (f"the documents do not answer this (answerable {state.get('answerable', 0.0):.2f} < "
                  f"{self.settings.answerable_threshold:.2f}); answered from general knowledge by the {tier} model "
                  f"({decision.reason})")
        return update | {"draft": answer, "confidence": confidence, "escalation_reason": reason,
                         "signals": {"answerable": float(state.get("answerable") or 0.0)},
                         "sources": [source | {"used": False} for source in state.get("sources", [])],
                         "trace": _step(state, "general", started, tier=tier)} | _final(state, answer)

    def _not_in_documents(self, state: TurnState, why: str) -> TurnState:
        started = time.perf_counter()
        answerable = float(state.get("answerable") or 0.0)
        reason = (f"the documents do not answer this (answerable {answerable:.2f} < "
                  f"{self.settings.answerable_threshold:.2f}) and {why}: no general-knowledge answer")
        return {"draft": NOT_IN_DOCUMENTS, "confidence": round(1.0 - answerable, 4), "escalated": False,
                "escalation_reason": reason, "signals": {"answerable": answerable},
                "sources": [source | {"used": False} for source in state.get("sources", [])],
                "trace": _step(state, "general", started, refused=True)} | _final(state, NOT_IN_DOCUMENTS)

    @staticmethod
    def _evidence(state: TurnState) -> list[Evidence]:
        return [Evidence(**item) for item in state.get("evidence", [])]

    def _fact_answer(self, state: TurnState, model: ChatModel, tier: str, step: str) -> TurnState:
        started = time.perf_counter()
        evidence = self._evidence(state)
        completion = _stream(model, tier, fact_messages(state["question"], evidence), self._cancelled(state),
                             max_tokens=_budget(state, self.settings.fact_max_tokens), temperature=0.0)
        text = completion.text.strip()
        not_found = NOT_FOUND in text.lower()
        sources = [dict(source) for source in state.get("sources", [])]
        cited_ids: list[str] = []
        if not_found:
            text = NOT_IN_DOCUMENTS
        else:
            bare, cited_ids = cite(text, evidence)
            text = numbered(bare, cited_ids, sources)
            quotes = {str(source.get("chunk_id")): supporting_quote(bare, str(source.get("text", "")))
                      for source in sources if source.get("chunk_id") in cited_ids}
            sources = [source | {"cited": source.get("chunk_id") in quotes,
                                 "quote": quotes.get(str(source.get("chunk_id")), "")} for source in sources]
        evidence_text = " ".join(item.text for item in evidence)
        features = fact_features(state["question"], text, evidence_text, state.get("sources", []),
                                 completion.token_probabilities, not_found=not_found,
                                 finish_reason=completion.finish_reason)
        learned = self.deps.escalation_model.probability("fact", features)
        if learned is not None:
            confidence = round(learned, 4)
            signals = {"p_correct": confidence, **dict(self.deps.escalation_model.models["fact"].contributions(
                features))}
        else:
            top_dense = next((s.get("dense_score") for s in state.get("sources", []) if s.get("dense_score")), None)
            confidence, signals = heuristic_fact_confidence(completion.token_probabilities, text, evidence_text,
                                                            top_dense, not_found)
        return {"draft": text, "confidence": confidence, "signals": signals, "features": features, "sources": sources,
                "usage": _usage(state, step, tier, completion),
                "trace": _step(state, step, started, tier=tier, cited=cited_ids)}

    def answer_fact(self, state: TurnState) -> TurnState:
        return self._fact_answer(state, self.deps.small, "small", "answer")

    # ---- CHAT ------------------------------------------------------------------------------------

    def _chat_answer(self, state: TurnState, model: ChatModel, tier: str, step: str) -> TurnState:
        started = time.perf_counter()
        messages = chat_messages(state["question"], state.get("messages", []), self.settings.history_turns)
        completion = _stream(model, tier, messages, self._cancelled(state),
                             max_tokens=_budget(state, self.settings.chat_max_tokens), temperature=0.0)
        text = completion.text.strip()
        features = chat_features(state["question"], text, completion.token_probabilities,
                                 finish_reason=completion.finish_reason)
        confidence = self._chat_confidence(features)
        signals = {"repetition": round(features["repetition"], 4), "empty": features["empty"]}
        return {"draft": text, "confidence": confidence, "signals": signals, "features": features,
                "usage": _usage(state, step, tier, completion), "trace": _step(state, step, started, tier=tier)}

    def _chat_confidence(self, features: dict[str, float]) -> float:
        """A free-form answer's confidence: the learned ``chat`` model when trained, else 1 minus how much it loops
        (an empty answer scores 0)."""
        learned = self.deps.escalation_model.probability("chat", features)
        if learned is not None:
            return round(learned, 4)
        return round(0.0 if features.get("empty") else 1.0 - features.get("repetition", 0.0), 4)

    def chat(self, state: TurnState) -> TurnState:
        return self._chat_answer(state, self.deps.small, "small", "chat")

    # ---- check and escalate ----------------------------------------------------------------------

    def check(self, state: TurnState) -> TurnState:
        """Decide whether the large model takes over the draft; when not, the draft is the answer and the turn ends."""
        started = time.perf_counter()
        earlier = [Decision.from_dict(item) for item in state.get("decisions", [])]
        if state.get("expression") and state.get("route_stage") == "calculator":
            decision, decided = self._decide(state, "calculator")
        elif any(item.large for item in earlier):
            decision, decided = earlier[-1], {}  # the large model answered already
        else:
            decision, decided = self._decide(state, "draft", state.get("confidence", 0.0),
                                             *self._escalation_estimate(state))
        escalate = decision.large and decision.inputs.stage == "draft"
        reasons = [item.reason for item in [*earlier, decision]] if decided else [decision.reason]
        update: TurnState = {"escalated": escalate or state.get("escalated", False), **decided,
                             "escalation_reason": "; ".join(dict.fromkeys(reason for reason in reasons if reason))}
        if not escalate:
            update |= _final(state, state.get("draft", ""))
        update["trace"] = _step(state, "check", started, escalate=escalate, reason=decision.reason,
                                confidence=state.get("confidence", 0.0))
        return update

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

    def _escalation_estimate(self, state: TurnState) -> tuple[int, int]:
        """(prompt tokens, output tokens) of the large model's call if this turn's draft escalates: the draft's own
        prompt and the route's answer budget."""
        if state["route"] == "MATH":
            return self._solving_estimate(state["question"])
        usage = state.get("usage", [])
        prompt_tokens = int(usage[-1].get("prompt_tokens", 0)) if usage else 0
        setting = self.settings.chat_max_tokens if state["route"] == "CHAT" else self.settings.fact_max_tokens
        return prompt_tokens, _budget(state, setting)

    @staticmethod
    def after_check(state: TurnState) -> str:
        decisions = state.get("decisions", [])
        last = Decision.from_dict(decisions[-1]) if decisions else None
        return "escalate" if last is not None and last.large and last.inputs.stage == "draft" else END

    def escalate(self, state: TurnState) -> TurnState:
        """The large model answers the same turn with the same passages or tool; its answer ends the turn."""
        if (writer := _writer()) is not None:
            writer({"event": "escalate", "reason": state.get("escalation_reason", "")})
        _reset()
        route = state["route"]
        if route == "FACT":
            update = self._fact_answer(state, self.deps.large, "large", "escalate")
        elif route == "CHAT":
            update = self._chat_answer(state, self.deps.large, "large", "escalate")
        else:
            update = self._solve(state, self.deps.large, "large", "escalate")
        return update | _final(state, update.get("draft", ""))


def _final(state: TurnState, answer: str) -> TurnState:
    """The turn's answer and the two messages it adds to the thread."""
    return {"answer": answer, "messages": [{"role": "user", "content": state["question"]},
                                           {"role": "assistant", "content": answer}]}


def build_graph(deps: GraphDeps, checkpointer: Any = None) -> Any:
    """The compiled graph for these models, router, search and calculator (one per Assistant)."""
    nodes = _Nodes(deps)
    graph = StateGraph(TurnState)
    for name in ("route", "calculate", "word_problem", "retrieve", "answer_fact", "general", "chat", "check",
                 "escalate"):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", nodes.after_route,
                                ["calculate", "word_problem", "retrieve", "chat"])
    graph.add_conditional_edges("retrieve", nodes.after_retrieve, ["answer_fact", "general"])
    graph.add_edge("general", END)
    for name in ("calculate", "word_problem", "answer_fact", "chat"):
        graph.add_edge(name, "check")
    graph.add_conditional_edges("check", nodes.after_check, ["escalate", END])
    graph.add_edge("escalate", END)
    return graph.compile(checkpointer=checkpointer)
