"""The CHAT node: the small model answers from the thread's history."""

from __future__ import annotations

import time

from assistant.core.features import chat_features
from assistant.core.nodes.base import (
    NodeBase,
    TurnState,
    budget,
    prompt_tokens_estimate,
    step_trace,
    stream_model,
    with_usage,
)
from assistant.core.prompts import chat_messages
from models.base import ChatModel, Message


class ChatNodes(NodeBase):
    """Free-form turns."""

    def _messages(self, state: TurnState) -> list[Message]:
        """The turn's prompt: the chat system prompt, the thread's recent history and the question."""
        return chat_messages(state["question"], state.get("messages", []), self.settings.history_turns,
                             state.get("system_prompt") or "")

    def _chat_answer(self, state: TurnState, model: ChatModel, tier: str, step: str,
                     messages: list[Message] | None = None) -> TurnState:
        started = time.perf_counter()
        messages = messages or self._messages(state)
        completion = stream_model(model, tier, messages, self._cancelled(state),
                                  max_tokens=budget(state, self.settings.chat_max_tokens),
                                  temperature=state.get("temperature") or 0.0)
        text = completion.text.strip()
        features = chat_features(state["question"], text, completion.token_probabilities,
                                 finish_reason=completion.finish_reason)
        confidence = self._chat_confidence(tier, features)
        signals = {"repetition": round(features["repetition"], 4), "empty": features["empty"]}
        return {"draft": text, "confidence": confidence, "signals": signals, "features": features,
                "usage": with_usage(state, step, tier, completion),
                "trace": step_trace(state, step, started, tier=tier)}

    def _chat_confidence(self, tier: str, features: dict[str, float]) -> float:
        """A free-form answer's confidence: an empty answer 0; else the probability that a person finds it
        acceptable, by the tier's learned ``chat_<tier>`` model (fitted on hand-labelled dev answers), or 1 minus
        how much it loops where no model was fitted."""
        if features.get("empty"):
            return 0.0
        learned = self.deps.escalation_model.probability(f"chat_{tier}", features)
        if learned is not None:
            return round(learned, 4)
        return round(1.0 - features.get("repetition", 0.0), 4)

    def chat(self, state: TurnState) -> TurnState:
        """The person's model choice answers; else the tier the policy starts with (``chat_start``, the large one only
        while escalation is on and the cost cap allows it), whose answer the check node then weighs."""
        chosen = state.get("answer_with")
        if chosen is not None:
            return self._chat_answer(state, self.deps.large if chosen == "large" else self.deps.small, chosen, "chat")
        if self.settings.chat_start == "small":
            return self._chat_answer(state, self.deps.small, "small", "chat")
        messages = self._messages(state)
        decision, decided = self._decide(state, "start", None, prompt_tokens_estimate(messages),
                                         budget(state, self.settings.chat_max_tokens), start_tier="large")
        if decision.large:
            return self._chat_answer(state, self.deps.large, "large", "chat", messages) | decided | {"escalated": True}
        return self._chat_answer(state, self.deps.small, "small", "chat", messages) | decided
