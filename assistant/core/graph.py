"""The routing graph (LangGraph): route -> calculate | word problem | retrieve -> answer | general | chat -> check
-> escalate?

A FACT turn whose documents do not answer the question (the learned ``answerable`` model, from retrieval features
alone) goes to ``general``: a closed-book answer labelled as not coming from the documents, citing nothing.

``check`` ends the turn itself when it keeps the draft, and ``escalate`` ends it with the large model's answer:
every superstep after a model call runs with caches the model has just flushed, so the turn takes as few as it can.

The nodes live in assistant/core/nodes (one module per route, over what they share); this module routes, checks,
escalates and wires them into the compiled graph.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from langgraph.graph import END, START, StateGraph

from assistant.core.decision import Decision, joined_reasons
from assistant.core.features import matches_documents
from assistant.core.nodes.base import GraphDeps, TurnState, budget, final, reset_shown, step_trace, stream_writer
from assistant.core.nodes.chat import ChatNodes
from assistant.core.nodes.facts import FactNodes
from assistant.core.nodes.math import MathNodes
from assistant.core.routing import ROUTES, RouteDecision


class _Nodes(MathNodes, FactNodes, ChatNodes):
    """Every node: routing, each route's (from its mixin), the check and the escalation."""

    def route(self, state: TurnState) -> TurnState:
        started = time.perf_counter()
        # In a thread the checkpoint still holds the last turn's route until this node replaces it.
        last = state.get("route") if state.get("messages") else None
        previous = last if last in ROUTES else None
        chosen = state.get("answer_with")
        if chosen:  # the person chose the model: it answers as a chat, with no routing, tools or escalation
            decision = RouteDecision("CHAT", "forced", f"the person chose the {chosen} model")
        else:
            decision = self.deps.router.route(state["question"], previous)
        # Chat requests and word problems (not plain arithmetic) that name what the documents speak of are theirs:
        # "What was the AMZN price on Dec 1 2009?" reads like a word problem.
        word_problem = decision.route == "MATH" and decision.expression is None
        if (decision.route == "CHAT" or word_problem) and not chosen:
            coverage, cosine = self._documents_rule(word_problem)
            if self._documents_match(state["question"], coverage, cosine):
                decision = replace(decision, route="FACT", stage="documents",
                                   reason=f"{decision.reason}; but the documents speak of what it names "
                                          f"(coverage >= {coverage:.2f})")
        update: TurnState = {
            "route": decision.route, "route_stage": decision.stage, "route_reason": decision.reason,
            "expression": decision.expression, "sources": [], "evidence": [], "draft": "", "answer": "",
            "confidence": 0.0, "signals": {}, "features": {}, "answerable": None, "escalated": False,
            "escalation_reason": "", "decisions": [], "calculation": None, "working": "",
            "usage": [], "trace": [],
        }
        if decision.usage is not None:
            update["usage"] = [{"step": "route", "tier": "small", **decision.usage.to_dict()}]
        update["trace"] = step_trace({}, "route", started, route=decision.route, stage=decision.stage,
                                     scores=decision.scores)
        return update

    def _documents_rule(self, word_problem: bool) -> tuple[float, float]:
        """(coverage, cosine) a question the router sent to a word problem or to chat must reach to go to the
        documents; a word problem's cosine does not count."""
        if word_problem:
            return self.settings.route_word_problem_coverage, -1.0
        return self.settings.route_coverage, self.settings.route_dense

    def _documents_match(self, question: str, coverage: float, cosine: float) -> bool:
        """Whether a question the router sent to chat or to a word problem names what the documents speak of
        (retrieval takes milliseconds; the retrieved text never enters the routing prompt)."""
        if coverage > 1:
            return False
        sources = [hit.to_dict() for hit in self.deps.search(question, self.settings.fact_k)]
        return matches_documents(question, sources, coverage, cosine)

    @staticmethod
    def after_route(state: TurnState) -> str:
        if state["route"] == "MATH":
            return "calculate" if state.get("expression") else "word_problem"
        return "retrieve" if state["route"] == "FACT" else "chat"

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
                             "escalation_reason": joined_reasons(reasons)}
        if not escalate:
            update |= final(state, state.get("draft", ""))
        update["trace"] = step_trace(state, "check", started, escalate=escalate, reason=decision.reason,
                                     confidence=state.get("confidence", 0.0))
        return update

    def _escalation_estimate(self, state: TurnState) -> tuple[int, int]:
        """(prompt tokens, output tokens) of the large model's call if this turn's draft escalates: the draft's own
        prompt and the route's answer budget."""
        if state["route"] == "MATH":
            return self._solving_estimate(state["question"])
        usage = state.get("usage", [])
        prompt_tokens = int(usage[-1].get("prompt_tokens", 0)) if usage else 0
        setting = self.settings.chat_max_tokens if state["route"] == "CHAT" else self.settings.fact_max_tokens
        return prompt_tokens, budget(state, setting)

    @staticmethod
    def after_check(state: TurnState) -> str:
        decisions = state.get("decisions", [])
        last = Decision.from_dict(decisions[-1]) if decisions else None
        return "escalate" if last is not None and last.large and last.inputs.stage == "draft" else END

    def escalate(self, state: TurnState) -> TurnState:
        """The large model answers the same turn with the same passages or tool; its answer ends the turn."""
        if (writer := stream_writer()) is not None:
            writer({"event": "escalate", "reason": state.get("escalation_reason", "")})
        reset_shown()
        route = state["route"]
        if route == "FACT":
            update = self._fact_answer(state, self.deps.large, "large", "escalate")
        elif route == "CHAT":
            update = self._chat_answer(state, self.deps.large, "large", "escalate")
        else:
            update = self._solve(state, self.deps.large, "large", "escalate")
        return update | final(state, update.get("draft", ""))


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
    graph.add_conditional_edges("answer_fact", nodes.after_answer_fact, ["check", "general"])
    for name in ("calculate", "word_problem", "chat"):
        graph.add_edge(name, "check")
    graph.add_conditional_edges("check", nodes.after_check, ["escalate", END])
    graph.add_edge("escalate", END)
    return graph.compile(checkpointer=checkpointer)
