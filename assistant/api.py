"""The Python API for people and agents: ``Assistant.from_settings().ask(question) -> Answer``.

The answering core lives in :mod:`assistant.core`; this module is its one public face, kept stable for callers.
"""

from assistant.core.answer import Answer
from assistant.core.assistant import Assistant, AssistantTool
from assistant.core.settings import Settings

__all__ = ["Answer", "Assistant", "AssistantTool", "Settings"]
