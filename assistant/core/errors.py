"""The product's user-facing errors (defined in the leaf package ``common`` so every layer can raise them)."""

from common.errors import AssistantError, ConfigError, choice_hint

__all__ = ["AssistantError", "ConfigError", "choice_hint"]
