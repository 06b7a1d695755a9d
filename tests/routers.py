"""A router that sends every question one way, for tests of what follows routing (the cascade router has its own)."""

from __future__ import annotations

from assistant.core.routing import RouteDecision


class FixedRouter:
    """Routes every question to one route, recording what it was asked."""

    def __init__(self, route: str) -> None:
        self.route_name = route
        self.questions: list[str] = []
        self.previous: list[str | None] = []

    def route(self, question: str, previous: str | None = None) -> RouteDecision:
        self.questions.append(question)
        self.previous.append(previous)
        return RouteDecision(self.route_name, "forced", "test")  # type: ignore[arg-type]
