"""A bounded reader for GGUF headers: metadata and tensor shapes, never tensor data.

GGUF files are untrusted input, so every length and count is capped before it is used.
The parameter count is the sum of tensor element counts, as llama.cpp's ``llama_model_n_params`` reports it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from models.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
_MAX_STRING = 16 * 1024 * 1024
_MAX_COUNT = 10_000_000
_MAX_DIMS = 8
_KEEP_STRING = 4096

# value type id -> struct format for scalars
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GGUFInfo:
    """What the header of a GGUF file says."""

    version: int
    parameters: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        """general.architecture, e.g. 'qwen2' or 'llama'."""
        return str(self.metadata.get("general.architecture", ""))

    @property
    def has_chat_template(self) -> bool:
        """Whether the file carries a chat template (base models usually do not)."""
        return "tokenizer.chat_template" in self.metadata


class _Reader:
    def __init__(self, stream: BinaryIO, path: Path) -> None:
        self.stream = stream
        self.path = path

    def take(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise ModelFileError(f"{self.path} ends inside its GGUF header (truncated?)",
                                 "fetch the file again: `assistant models fetch`")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self, what: str) -> int:
        value = int(self.scalar("<Q"))
        if value > _MAX_COUNT:
            raise ModelFileError(f"{self.path}: implausible {what} {value} in GGUF header",
                                 "the file is not a valid GGUF model; use another file")
        return value

    def string(self, keep: bool = True) -> str:
        length = int(self.scalar("<Q"))
        if length > _MAX_STRING:
            raise ModelFileError(f"{self.path}: string of {length} bytes in GGUF header",
                                 "the file is not a valid GGUF model; use another file")
        if not keep or length > _KEEP_STRING * 16:
            self.stream.seek(length, 1)
            return ""
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, type_id: int, keep: bool = True) -> Any:
        if type_id in _SCALARS:
            return self.scalar(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string(keep)
        if type_id == _ARRAY:
            item_type = int(self.scalar("<I"))
            length = self.count("array length")
            if item_type in _SCALARS:
                self.stream.seek(struct.calcsize(_SCALARS[item_type]) * length, 1)
            else:
                for _ in range(length):
                    self.value(item_type, keep=False)
            return f"<array of {length}>"
        raise ModelFileError(f"{self.path}: unknown GGUF value type {type_id}",
                             "the file is not a valid GGUF model; use another file")


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header of ``path``; raise ``ModelFileError`` if it is not a sane GGUF file."""
    try:
        stream = path.open("rb")
    except OSError as error:
        raise ModelFileError(f"cannot open model file {path}: {error.strerror}",
                             "check the path, or run `assistant models fetch`") from error
    with stream:
        reader = _Reader(stream, path)
        if reader.take(4) != GGUF_MAGIC:
            raise ModelFileError(f"{path} is not a GGUF file (bad magic)",
                                 "point the tier at a .gguf model file")
        version = int(reader.scalar("<I"))
        if version not in (2, 3):
            raise ModelFileError(f"{path}: unsupported GGUF version {version}", "use a GGUF v2 or v3 file")
        tensor_count = reader.count("tensor count")
        kv_count = reader.count("metadata count")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = reader.string()
            metadata[key] = reader.value(int(reader.scalar("<I")))
        parameters = 0
        for _ in range(tensor_count):
            reader.string(keep=False)
            n_dims = int(reader.scalar("<I"))
            if n_dims > _MAX_DIMS:
                raise ModelFileError(f"{path}: tensor with {n_dims} dimensions",
                                     "the file is not a valid GGUF model; use another file")
            elements = 1
            for _ in range(n_dims):
                elements *= int(reader.scalar("<Q"))
            reader.take(4 + 8)  # tensor type, data offset
            parameters += elements
    return GGUFInfo(version=version, parameters=parameters, tensor_count=tensor_count, metadata=metadata)
