"""Write small synthetic GGUF files for tests (header only, zero-filled tensor data)."""

from __future__ import annotations

import struct
from pathlib import Path


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, tensors: dict[str, tuple[int, ...]], metadata: dict[str, str | int]) -> int:
    """Write a GGUF v3 file; return its parameter count."""
    body = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata) + 1)
    for key, value in metadata.items():
        body += _string(key)
        body += struct.pack("<I", 8) + _string(value) if isinstance(value, str) else struct.pack("<Iq", 11, value)
    body += _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3)
    body += b"".join(_string(token) for token in ("<s>", "a", "b"))
    parameters = 0
    for name, shape in tensors.items():
        body += _string(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        body += struct.pack("<IQ", 0, 0)
        count = 1
        for dim in shape:
            count *= dim
        parameters += count
    path.write_bytes(body + b"\0" * 64)
    return parameters
