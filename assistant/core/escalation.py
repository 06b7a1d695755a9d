"""The learned escalation decision: logistic models over a turn's features, stored as plain JSON weights.

``assistant eval train-escalation`` fits them on dev records (scikit-learn) and writes the JSON; here they run with
numpy alone (no pickle anywhere). Each model turns a ``{feature: value}`` dict (``assistant.core.features``) into a
probability:

- ``fact``: that the small model's answer from the documents is right (the FACT turn's ``confidence``);
- ``answerable``: that the documents answer the question at all (below ``answerable_threshold`` the assistant says
  the answer is not in the documents and answers from general knowledge, labelled as such);
- ``program_<tier>`` / ``working_<tier>``: that a word problem's program, or its working with the calculator (by that
  tier), gives the right number (the MATH turn's ``confidence``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.errors import ConfigError

FORMAT_VERSION = 1
DEFAULT_MODEL_PATH = Path(__file__).with_name("escalation_model.json")


@dataclass(frozen=True)
class LogisticModel:
    """``sigmoid(coef . (x - mean) / scale + intercept)`` over named features (a missing feature counts as its
    training mean, so it moves nothing)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.mean), len(self.scale), len(self.coef)}
        if len(sizes) != 1:
            raise ValueError(f"a logistic model needs one mean, scale and coefficient per feature, got {sizes}")
        if any(value <= 0 or not math.isfinite(value) for value in self.scale):
            raise ValueError("every scale must be a positive finite number")

    def vector(self, values: Mapping[str, float]) -> np.ndarray:
        """The standardised feature vector of ``values``."""
        raw = np.array([float(values.get(name, mean)) for name, mean in zip(self.features, self.mean, strict=True)])
        standard: np.ndarray = (raw - np.array(self.mean)) / np.array(self.scale)
        return standard

    def probability(self, values: Mapping[str, float]) -> float:
        """The modelled probability for one turn's features."""
        logit = float(self.vector(values) @ np.array(self.coef)) + self.intercept
        return float(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit)))))

    def contributions(self, values: Mapping[str, float], top: int = 3) -> list[tuple[str, float]]:
        """The ``top`` features that moved this turn's logit most, with their signed contribution."""
        terms = self.vector(values) * np.array(self.coef)
        order = np.argsort(-np.abs(terms))[:top]
        return [(self.features[index], round(float(terms[index]), 3)) for index in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticModel:
        """The model :meth:`to_dict` wrote."""
        return cls(tuple(str(name) for name in data["features"]), tuple(float(v) for v in data["mean"]),
                   tuple(float(v) for v in data["scale"]), tuple(float(v) for v in data["coef"]),
                   float(data["intercept"]))


@dataclass(frozen=True)
class EscalationModel:
    """The learned models by name, with where they came from (training command, data, commit, dev metrics)."""

    models: dict[str, LogisticModel]
    meta: dict[str, Any] = field(default_factory=dict)
    digest: str = ""

    def probability(self, name: str, values: Mapping[str, float]) -> float | None:
        """Model ``name``'s probability for ``values``; None when no such model was trained."""
        model = self.models.get(name)
        return None if model is None else model.probability(values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as :func:`load_escalation_model` reads it."""
        return {"format": FORMAT_VERSION, "meta": self.meta,
                "models": {name: model.to_dict() for name, model in sorted(self.models.items())}}


EMPTY_MODEL = EscalationModel({}, {"note": "no trained model"}, "untrained")


def load_escalation_model(path: Path | None = None) -> EscalationModel:
    """The models stored at ``path`` (default: the shipped file); the empty model when the default is absent."""
    location = path or DEFAULT_MODEL_PATH
    if not location.exists():
        if path is None:
            return EMPTY_MODEL
        raise ConfigError(f"no escalation model at {location}",
                          "train one with `assistant eval train-escalation RESULTS...` or unset escalation_model")
    raw = location.read_bytes()
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT_VERSION}")
        models = {str(name): LogisticModel.from_dict(model) for name, model in data["models"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{location} is not an escalation model ({error})",
                          "retrain it with `assistant eval train-escalation`") from None
    return EscalationModel(models, dict(data.get("meta", {})), hashlib.sha256(raw).hexdigest()[:16])
