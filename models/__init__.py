"""The model layer: one chat interface over llama.cpp GGUF models and OpenAI-compatible endpoints.

Heavy backends are imported lazily; ``from models import ChatModel, Completion, Usage`` is cheap.
"""

from models.base import ChatModel, Completion, Message, StreamItem, TextDelta, Usage, collect_stream
from models.errors import EndpointError, ModelError, ModelFetchError, ModelFileError
from models.fake import FakeChatModel

__all__ = [
    "ChatModel",
    "Completion",
    "EndpointError",
    "FakeChatModel",
    "Message",
    "ModelError",
    "ModelFetchError",
    "ModelFileError",
    "StreamItem",
    "TextDelta",
    "Usage",
    "collect_stream",
]
