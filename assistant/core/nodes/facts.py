"""The FACT nodes: retrieval, the reader's answer with citations, and what is said when the documents do not answer."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from assistant.core.confidence import heuristic_fact_confidence
from assistant.core.decision import Tier
from assistant.core.features import (
    absent_specifics,
    answerability_features,
    chat_features,
    fact_features,
    speaks_of,
)
from assistant.core.nodes.base import (
    NodeBase,
    TurnState,
    budget,
    final,
    prompt_tokens_estimate,
    reset_shown,
    step_trace,
    stream_model,
    usage_entry,
    with_usage,
)
from assistant.core.passages import (
    Evidence,
    cite,
    echoes_question,
    numbered,
    select_evidence,
    supporting_quote,
    unsupported,
)
from assistant.core.prompts import GENERAL_KNOWLEDGE_LABEL, NOT_FOUND, NOT_IN_DOCUMENTS, fact_messages, general_messages
from models.base import ChatModel


def _uncited(state: TurnState) -> list[dict[str, Any]]:
    """The turn's passages as the closest ones, none of them sent as evidence or cited (a doubtful turn's reader may
    have cited one before its answer was set aside)."""
    return [source | {"used": False, "cited": False, "quote": ""} for source in state.get("sources", [])]


class FactNodes(NodeBase):
    """Questions about the documents."""

    def retrieve(self, state: TurnState) -> TurnState:
        started = time.perf_counter()
        hits = self.deps.search(state["question"], self.settings.fact_k)
        evidence = select_evidence(state["question"], hits, self.settings.evidence_chars,
                                   self.settings.evidence_chunks, method=self.settings.evidence_method,
                                   similarity=self.deps.similarity, row_floor=self.settings.evidence_row_floor)
        sources = [hit.to_dict() | {"used": any(item.chunk_id == hit.chunk_id for item in evidence)} for hit in hits]
        features = answerability_features(state["question"], sources, " ".join(item.text for item in evidence))
        answerable = self.deps.escalation_model.probability("answerable", features)
        absent = absent_specifics(state["question"], sources)
        if absent:  # a year, size or code the passages never mention: whatever they say is not the answer
            answerable = 0.0
        return {"sources": sources, "evidence": [asdict(item) for item in evidence], "features": features,
                "answerable": None if answerable is None else round(answerable, 4),
                "trace": step_trace(state, "retrieve", started, hits=len(hits), evidence=len(evidence),
                                    answerable=answerable, absent=absent)}

    def after_retrieve(self, state: TurnState) -> str:
        answerable = state.get("answerable")
        if answerable is not None and answerable < min(self.settings.answerable_floor,
                                                       self.settings.answerable_threshold):
            return "general"
        return "answer_fact"

    def _doubtful(self, state: TurnState) -> bool:
        """Whether the documents were thought unlikely to answer (answerability below the threshold) and the
        reader was asked anyway."""
        answerable = state.get("answerable")
        return answerable is not None and answerable < self.settings.answerable_threshold

    @staticmethod
    def _reader_found(state: TurnState) -> bool:
        """Whether the reader's draft is an answer (not its refusal, nor one set aside as read from nowhere)."""
        return not state.get("features", {}).get("not_found")

    def after_answer_fact(self, state: TurnState) -> str:
        """A doubtful turn keeps the reader's answer only when it found one with confidence of at least
        ``doubtful_confidence``; otherwise the documents do not answer it (the refusal, or general knowledge)."""
        sure = self._reader_found(state) and state.get("confidence", 0.0) >= self.settings.doubtful_confidence
        return "general" if self._doubtful(state) and not sure else "check"

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
        messages, max_tokens = general_messages(state["question"]), budget(state, self.settings.fact_max_tokens)
        decision, decided = self._decide(state, "start", None, prompt_tokens_estimate(messages), max_tokens)
        tier: Tier = "large" if decision.large else "small"
        model = self.deps.large if decision.large else self.deps.small
        # held until checked: an unsure closed-book answer about a private name is an invention, never shown
        completion = stream_model(model, tier, messages, self._cancelled(state), forward=False, max_tokens=max_tokens,
                                  temperature=0.0)
        usage.append(usage_entry("general", tier, completion))
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
        reset_shown(answer)
        reason = (f"{self._unanswered(state)}; answered from general knowledge by the {tier} model "
                  f"({decision.reason})")
        return update | {"draft": answer, "confidence": confidence, "escalation_reason": reason,
                         "signals": {"answerable": float(state.get("answerable") or 0.0)},
                         "sources": _uncited(state),
                         "trace": step_trace(state, "general", started, tier=tier)} | final(state, answer)

    def _not_in_documents(self, state: TurnState, why: str) -> TurnState:
        started = time.perf_counter()
        answerable = float(state.get("answerable") or 0.0)
        reason = f"{self._unanswered(state)} and {why}: no general-knowledge answer"
        return {"draft": NOT_IN_DOCUMENTS, "confidence": round(1.0 - answerable, 4), "escalated": False,
                "escalation_reason": reason, "signals": {"answerable": answerable},
                "sources": _uncited(state),
                "trace": step_trace(state, "general", started, refused=True)} | final(state, NOT_IN_DOCUMENTS)

    def _unanswered(self, state: TurnState) -> str:
        """Why the documents do not answer: what the question names that they never mention, or answerability."""
        absent = absent_specifics(state["question"], state.get("sources", []))
        if absent:
            return f"the documents do not answer this (they never mention {', '.join(absent)})"
        unanswered = (f"the documents do not answer this (answerable {float(state.get('answerable') or 0.0):.2f} < "
                      f"{self.settings.answerable_threshold:.2f}")
        if state.get("draft"):  # a doubtful turn the reader answered: why its answer did not stand
            unanswered += (f"; the reader's answer had confidence {float(state.get('confidence') or 0.0):.2f} < "
                           f"{self.settings.doubtful_confidence:.2f}" if self._reader_found(state)
                           else "; the reader found no answer")
        return unanswered + ")"

    @staticmethod
    def _evidence(state: TurnState) -> list[Evidence]:
        return [Evidence(**item) for item in state.get("evidence", [])]

    def _fact_answer(self, state: TurnState, model: ChatModel, tier: str, step: str) -> TurnState:
        started = time.perf_counter()
        evidence = self._evidence(state)
        completion = stream_model(model, tier, fact_messages(state["question"], evidence), self._cancelled(state),
                                  max_tokens=budget(state, self.settings.fact_max_tokens), temperature=0.0)
        text = completion.text.strip()
        not_found = (NOT_FOUND in text.lower() or unsupported(text, evidence)
                     or echoes_question(text, state["question"]))
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
                "usage": with_usage(state, step, tier, completion),
                "trace": step_trace(state, step, started, tier=tier, cited=cited_ids)}

    def answer_fact(self, state: TurnState) -> TurnState:
        return self._fact_answer(state, self.deps.small, "small", "answer")
