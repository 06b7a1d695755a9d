"""The MATH nodes: plain arithmetic by the calculator, word problems worked by a model with the calculator."""

from __future__ import annotations

import time

from assistant.core.confidence import agreement
from assistant.core.features import program_features, working_features
from assistant.core.nodes.base import (
    NodeBase,
    TurnState,
    calculator_text,
    prompt_tokens_estimate,
    step_trace,
    stream_writer,
    usage_entry,
)
from assistant.core.program import PROGRAM_SCHEMA, ProgramError, evaluate_program
from assistant.core.prompts import program_messages
from assistant.core.working import STOPS_ESTIMATE, format_answer, implied_unit, work, working_messages
from models.base import ChatModel, Completion
from tools.calculator import CalcResult
from tools.errors import CalculatorError

PROGRAM_MAX_TOKENS = 256
UNTRAINED_WORKING_CONFIDENCE = {True: 0.77, False: 0.48}
"""A working's confidence when no ``working_<tier>`` model is fitted: the share of the large model's workings that
were right on word-problems-dev with the final number written by the calculator and without (docs/BENCHMARKS.md)."""


class MathNodes(NodeBase):
    """Plain arithmetic and word problems."""

    def calculate(self, state: TurnState) -> TurnState:
        started = time.perf_counter()
        expression = state.get("expression") or ""
        try:
            result = self.deps.calculate(expression)
        except CalculatorError as error:
            return {"draft": f"The calculator could not evaluate {expression}: {error.message}", "confidence": 0.0,
                    "signals": {"calculator": 0.0}, "trace": step_trace(state, "calculate", started, ok=False)}
        return {"draft": calculator_text(result), "confidence": 1.0, "signals": {"calculator": 1.0},
                "calculation": result.to_dict(), "trace": step_trace(state, "calculate", started, ok=True)}

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
            usage.append(usage_entry(step, tier, completion))
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
                             "trace": step_trace(state, step, started, tier=tier, programs=programs)}
        successful = [result for result in results if result is not None]
        if not successful:
            return update | {"draft": "I could not turn this into a calculation.", "confidence": 0.0,
                             "signals": {"agreement": 0.0, "calculator": 0.0}, "calculation": None}
        best = max(successful, key=lambda result: values.count(result.exact))
        learned = self.deps.escalation_model.probability(f"program_{tier}", features)
        confidence = round(share if learned is None else learned, 4)
        return update | {"draft": calculator_text(best), "confidence": confidence, "expression": best.expression,
                         "signals": {"agreement": round(share, 4), "calculator": 1.0, "samples": float(len(results)),
                                     **({} if learned is None else {"p_correct": confidence})},
                         "calculation": best.to_dict() | {"sampled_programs": programs}}

    def _working_turn(self, state: TurnState, model: ChatModel, tier: str, step: str) -> TurnState:
        """The model works the problem in prose, the calculator writing every result; the working streams as
        ``working`` events and the answer is its final number with the question's unit."""
        started = time.perf_counter()
        writer = stream_writer()

        def emit(text: str) -> None:
            if writer is not None:
                writer({"working": text, "model": tier})

        done = work(model, state["question"], self.deps.calculate, max_tokens=self.settings.word_problem_max_tokens,
                    emit=emit, cancelled=self._cancelled(state))
        usage = [*state.get("usage", []), *(usage_entry(step, tier, completion) for completion in done.completions)]
        features = working_features(done)
        update: TurnState = {"usage": usage, "features": features, "working": done.text,
                             "trace": step_trace(state, step, started, tier=tier, pieces=len(done.completions),
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
            return prompt_tokens_estimate(program_messages(question)), PROGRAM_MAX_TOKENS
        return (prompt_tokens_estimate(working_messages(question)) * STOPS_ESTIMATE,
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
