from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ModelFileError
from models.gguf import read_gguf_info
from tests.gguf_factory import write_gguf


def test_parameters_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    expected = write_gguf(path, {"tok_embd": (8, 100), "blk.0.w": (8, 8), "norm": (8,)},
                          {"general.architecture": "qwen2", "tokenizer.chat_template": "{{x}}", "n": 5})
    info = read_gguf_info(path)
    assert info.parameters == expected == 800 + 64 + 8
    assert info.architecture == "qwen2"
    assert info.has_chat_template
    assert info.metadata["n"] == 5
    assert info.metadata["tokenizer.ggml.tokens"] == "<array of 3>"


def test_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        read_gguf_info(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, {"a": (4, 4)}, {"general.architecture": "llama"})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelFileError, match="truncated"):
        read_gguf_info(path)


def test_hostile_counts_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2**40).to_bytes(8, "little") + bytes(8))
    with pytest.raises(ModelFileError, match="implausible"):
        read_gguf_info(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot open"):
        read_gguf_info(tmp_path / "absent.gguf")
