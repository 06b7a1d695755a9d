"""A small-model-first local assistant: route each turn to the right tool, escalate only the uncertain ones."""

__version__ = "0.1.0"
