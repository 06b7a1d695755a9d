"""The install script's llama.cpp build flags: every vector extension the CPU lists, never Intel AMX."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llama_cmake_args.sh"

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the flags are for x86-64 builds")


def _cmake_args(tmp_path: Path, flags: str) -> set[str]:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    completed = subprocess.run(["bash", str(SCRIPT), str(cpuinfo)], capture_output=True, text=True, check=True)
    return set(completed.stdout.split())


def test_an_avx2_cpu_gets_avx2_and_no_avx512(tmp_path: Path) -> None:
    args = _cmake_args(tmp_path, "fpu sse sse2 avx avx2 bmi2 fma f16c")
    assert {"-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"} <= args
    assert {"-DGGML_AVX512=OFF", "-DGGML_AVX512_VNNI=OFF", "-DGGML_AVX_VNNI=OFF"} <= args


def test_a_cpu_listing_amx_gets_avx512_but_never_amx(tmp_path: Path) -> None:
    args = _cmake_args(tmp_path, "avx avx2 bmi2 fma f16c avx_vnni avx512f avx512vbmi avx512_vnni avx512_bf16 "
                                 "amx_bf16 amx_int8 amx_tile")
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_VBMI=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX_VNNI=ON"} <= args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= args
    assert not any(arg.startswith("-DGGML_AMX") and arg.endswith("=ON") for arg in args)


def test_a_flag_is_matched_whole_not_as_a_prefix(tmp_path: Path) -> None:
    # "avx512f" must not switch on AVX (the whole word "avx" is absent), nor "avx2" match "avx"
    args = _cmake_args(tmp_path, "sse avx2 avx512f")
    assert {"-DGGML_AVX=OFF", "-DGGML_AVX2=ON", "-DGGML_AVX512=ON"} <= args

