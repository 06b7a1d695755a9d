"""The answering core's output, typed: one :class:`Answer` per turn with its :class:`ModelCall` s, :class:`Source` s
and escalation :class:`~assistant.core.decision.Decision` s, and the one :class:`AnswerView` every interface renders
(the page and HTTP API as JSON, MCP as its typed result, the CLI and MCP as text, the eval's records).

The graph's state stays plain data (the checkpointer stores it); it becomes these objects where a turn ends, and
they are serialised again only for checkpoints, transcripts and results files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from assistant.core.decision import Decision
from assistant.core.prompts import GENERAL_KNOWLEDGE_LABEL, NOT_IN_DOCUMENTS
from retrieval.markdown import place

WRITING_STEPS = ("answer", "chat", "escalate")
"""Steps whose model call writes the answer's text (its finish reason is the answer's)."""


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The items of ``data`` that name a field of the dataclass ``cls``."""
    names = {item.name for item in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True)
class ModelCall:
    """One model call of a turn: its step and tier, what it consumed (:class:`models.base.Usage`'s figures) and why
    it stopped."""

    step: str
    tier: str
    model: str = ""
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    parameters: int = 0
    price_per_million_tokens: float = 0.0
    flops: float = 0.0
    nominal_flops: float = 0.0
    cost_usd: float = 0.0
    finish_reason: str = "stop"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCall:
        """The call a graph usage entry records."""
        return cls(**_known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """A retrieved passage of a turn: ``used`` = its sentences were sent to the model; ``cited`` = it supports the
    answer, ``quote`` = the sentence that does."""

    chunk_id: str
    doc_id: str
    text: str = ""
    title: str = ""
    section: str = ""
    source: str = ""
    score: float = 0.0
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None
    used: bool = False
    cited: bool = False
    quote: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        """The source a graph state entry records."""
        return cls(**_known(cls, data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


@dataclass(frozen=True)
class TierCost:
    """What a turn's calls to one tier (or all of them) consumed."""

    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    completion_tokens: int = 0
    flops: float = 0.0
    nominal_flops: float = 0.0
    cost_usd: float = 0.0
    wall_seconds: float = 0.0
    calls: int = 0

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens per second of model time, None when no time was spent."""
        return round(self.completion_tokens / self.wall_seconds, 2) if self.wall_seconds > 0 else None

    def plus(self, call: ModelCall | TierCost) -> TierCost:
        """This cost with ``call``'s added."""
        calls = call.calls if isinstance(call, TierCost) else 1
        return TierCost(self.prompt_tokens + call.prompt_tokens,
                        self.evaluated_prompt_tokens + call.evaluated_prompt_tokens,
                        self.completion_tokens + call.completion_tokens, self.flops + call.flops,
                        self.nominal_flops + call.nominal_flops, self.cost_usd + call.cost_usd,
                        self.wall_seconds + call.wall_seconds, self.calls + calls)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the speed."""
        return asdict(self) | {"tokens_per_second": self.tokens_per_second}


@dataclass(frozen=True)
class Cost:
    """A turn's cost per model tier and in total; the turn's estimated energy (None when no power model is known)
    and the estimate's source."""

    per_model: dict[str, TierCost]
    total: TierCost
    energy_joules: float | None = None
    energy_source: str = ""

    @classmethod
    def of(cls, usage: list[ModelCall], energy_joules: float | None = None, energy_source: str = "") -> Cost:
        """The cost of these calls."""
        per_model: dict[str, TierCost] = {}
        for call in usage:
            per_model[call.tier] = per_model.get(call.tier, TierCost()).plus(call)
        total = TierCost()
        for tier in per_model.values():
            total = total.plus(tier)
        return cls(per_model, total, energy_joules, energy_source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``per_model`` and ``total`` (the total carries the energy)."""
        return {"per_model": {tier: cost.to_dict() for tier, cost in self.per_model.items()},
                "total": self.total.to_dict() | {"energy_joules": self.energy_joules,
                                                 "energy_source": self.energy_source}}

    def text(self, seconds: float) -> str:
        """The cost in one phrase: tokens, FLOPs, output speed, energy, money and time (unknown parts left out)."""
        total = self.total
        parts = [f"{total.prompt_tokens + total.completion_tokens} tokens", f"{total.flops:.2e} FLOPs"]
        if total.tokens_per_second is not None:
            parts.append(f"{total.tokens_per_second:.1f} tok/s")
        if self.energy_joules is not None:
            parts.append(f"~{self.energy_joules:.1f} J")
        return ", ".join(parts) + f"; ${total.cost_usd:.6f}; {seconds:.2f} s"


@dataclass(frozen=True)
class Answer:
    """One answered turn: text, route, sources, confidence, escalation, cost, and the graph's trace; ``working`` is
    a word problem's step-by-step working (the calculator's results in it), empty otherwise; ``decisions`` are the
    escalation policy's decisions of the turn, with their inputs (assistant/core/decision.py)."""

    text: str
    route: str
    thread_id: str
    confidence: float
    escalated: bool
    escalation_reason: str
    route_stage: str = ""
    route_reason: str = ""
    sources: list[Source] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    answerable: float | None = None
    calculation: dict[str, Any] | None = None
    working: str = ""
    decisions: list[Decision] = field(default_factory=list)
    usage: list[ModelCall] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    energy_joules: float | None = None
    energy_source: str = ""

    @property
    def cost(self) -> Cost:
        """Tokens, FLOPs, money, model seconds and output speed per model tier and in total, with the energy."""
        return Cost.of(self.usage, self.energy_joules, self.energy_source)

    @property
    def finish_reason(self) -> str:
        """``length`` when the model writing the answer ran out of tokens, else ``stop`` (OpenAI's meaning)."""
        writers = [call for call in self.usage if call.step in WRITING_STEPS]
        return "length" if writers and writers[-1].finish_reason == "length" else "stop"

    @property
    def general_knowledge(self) -> bool:
        """Whether the documents did not answer the question and the answer comes from the model's own knowledge."""
        return self.text.startswith(GENERAL_KNOWLEDGE_LABEL)

    @property
    def not_in_documents(self) -> bool:
        """Whether the answer says the documents do not answer a question about them (no invention follows)."""
        return self.text.startswith(NOT_IN_DOCUMENTS)

    @property
    def used_sources(self) -> list[Source]:
        """The sources whose sentences were sent to the model."""
        return [source for source in self.sources if source.used]

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-able, with the cost summary (``assistant ask --json``)."""
        return asdict(self) | {"cost": self.cost.to_dict()}

    def view(self, thread_id: str | None = None) -> AnswerView:
        """What people and clients are shown; ``thread_id`` when the turn is kept (None: not kept)."""
        return AnswerView(
            text=self.text, route=self.route, route_stage=self.route_stage, confidence=self.confidence,
            answerable=self.answerable, general_knowledge=self.general_knowledge, escalated=self.escalated,
            escalation_reason=self.escalation_reason, not_in_documents=self.not_in_documents,
            sources=[SourceView.of(number, source) for number, source in enumerate(self.sources, start=1)],
            cost=self.cost, wall_seconds=self.wall_seconds, finish_reason=self.finish_reason, working=self.working,
            decisions=list(self.decisions), thread_id=thread_id)


@dataclass(frozen=True)
class SourceView:
    """A source as shown: its number ``marker`` (the ``[n]`` in the answer), where it sits (``place``: title and
    section), its text and the quote that supports the answer."""

    marker: int
    chunk_id: str
    doc_id: str
    title: str
    section: str
    score: float
    text: str
    used: bool
    cited: bool
    quote: str

    @classmethod
    def of(cls, marker: int, source: Source) -> SourceView:
        """Source number ``marker`` of an answer."""
        return cls(marker, source.chunk_id, source.doc_id, source.title, source.section, source.score, source.text,
                   source.used, source.cited, source.quote)

    @property
    def place(self) -> str:
        """The document's title and the section holding the passage, as people read it."""
        return place(self.title, self.section)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


@dataclass(frozen=True)
class AnswerView:
    """The one view of an answer that every interface renders: the page and HTTP API (``x_assistant``, the stored
    transcript) from :meth:`to_dict`, MCP from its fields, the CLI and MCP's text from :meth:`text_lines`."""

    text: str
    route: str
    route_stage: str
    confidence: float
    answerable: float | None
    general_knowledge: bool
    escalated: bool
    escalation_reason: str
    not_in_documents: bool
    sources: list[SourceView]
    cost: Cost
    wall_seconds: float
    finish_reason: str
    working: str
    decisions: list[Decision]
    thread_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the text itself is left out: it travels as the message's content)."""
        return {"route": self.route, "route_stage": self.route_stage, "confidence": self.confidence,
                "answerable": self.answerable, "general_knowledge": self.general_knowledge,
                "escalated": self.escalated, "escalation_reason": self.escalation_reason,
                "not_in_documents": self.not_in_documents, "sources": [source.to_dict() for source in self.sources],
                "cost": self.cost.to_dict(), "wall_seconds": self.wall_seconds, "finish_reason": self.finish_reason,
                "working": self.working, "decisions": [decision.to_dict() for decision in self.decisions],
                "thread_id": self.thread_id}

    def summary(self) -> str:
        """Route, confidence, escalation and cost in one line."""
        escalated = f"escalated: {self.escalation_reason}" if self.escalated else "not escalated"
        return (f"{self.route} via {self.route_stage}; confidence {self.confidence:.2f}; {escalated}; "
                f"{self.cost.text(self.wall_seconds)}")

    def text_lines(self, link: Callable[[SourceView], str] | None = None) -> list[str]:
        """The answer as text: the working (if any), the answer, then :meth:`footer_lines`."""
        working = [f"Working:\n{self.working}", ""] if self.working else []
        return [*working, self.text, *self.footer_lines(link)]

    def footer_lines(self, link: Callable[[SourceView], str] | None = None) -> list[str]:
        """The summary, then each cited source with its place and quote; ``link(source)`` names where a source can
        be opened (default: its chunk id)."""
        cited = [f"[{source.marker}] {source.place}: \"{source.quote}\" "
                 f"({link(source) if link is not None else source.chunk_id})"
                 for source in self.sources if source.cited]
        return [f"[{self.summary()}]", *cited]
