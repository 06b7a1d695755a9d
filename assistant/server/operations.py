"""Operations: Prometheus metrics, health, and the model list of the OpenAI API."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response

from assistant.metrics import CONTENT_TYPE
from assistant.server.services import ServicesDep

MODELS = ("assistant", "small", "large")
"""The model names a chat request may name: the routed assistant, or one tier directly."""

router = APIRouter()


@router.get("/metrics")
def prometheus(shared: ServicesDep) -> Response:
    """Prometheus metrics, the queues' depth read now."""
    shared.metrics.queue_depth.labels(queue="models").set(shared.lines.models.waiting)
    shared.metrics.queue_depth.labels(queue="calculator").set(shared.lines.calculator.waiting)
    return Response(shared.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/health")
def health(shared: ServicesDep) -> dict[str, Any]:
    """Up, with the model names served and the tiers loaded."""
    return {"status": "ok", "models": list(MODELS), "loaded": shared.assistant.loaded_tiers()}


@router.get("/v1/models")
def list_models() -> dict[str, Any]:
    """The OpenAI model list."""
    created = int(time.time())
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created,
                                        "owned_by": "small-first-assistant"} for name in MODELS]}
