"""The calculator's settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CalculatorSettings(BaseModel):
    """Limits of the calculator's worker process (inputs proven small run in-process without them)."""

    model_config = ConfigDict(extra="forbid")

    time_limit_s: float = Field(1.5, gt=0, le=60, description="Wall-clock limit of one calculation.")
    memory_mb: int = Field(1024, ge=256, le=65536, description="Address-space cap of the calculator worker.")
