"""Integration fixtures: the real shipped weights (fetched and verified once) and loaded models."""

from __future__ import annotations

import pytest

from assistant.core.settings import Settings
from models.llama_cpp_backend import LlamaCppModel
from models.registry import load_model


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    """Default settings (the user's cache dir, where `assistant models fetch` put the weights)."""
    return Settings.load(None, {"auto_fetch": True})


@pytest.fixture(scope="session")
def tiny_model(real_settings: Settings) -> LlamaCppModel:
    model = load_model(real_settings, "tiny", progress=False)
    assert isinstance(model, LlamaCppModel)
    return model


@pytest.fixture(scope="session")
def small_model(real_settings: Settings) -> LlamaCppModel:
    model = load_model(real_settings, "small", progress=False)
    assert isinstance(model, LlamaCppModel)
    return model
