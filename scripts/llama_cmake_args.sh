#!/usr/bin/env bash
# Print the CMAKE_ARGS that build llama.cpp (inside llama-cpp-python) for this CPU without Intel AMX.
# Usage: bash scripts/llama_cmake_args.sh [CPUINFO_FILE]   (default /proc/cpuinfo; prints nothing off x86-64)
# llama.cpp's default build targets the CPU it is built on (-march=native), AMX included, and some virtual machines
# list AMX but fault on its instructions (SIGILL in tilezero, seen on this project's machines). This turns on each
# vector extension the CPU lists and leaves AMX off.
set -euo pipefail
cpuinfo="${1:-/proc/cpuinfo}"
[ "$(uname -m)" = x86_64 ] || exit 0
cpu=" $(grep -m1 '^flags' "$cpuinfo" | cut -d: -f2) "
args="-DGGML_NATIVE=OFF"
for pair in avx:AVX avx2:AVX2 bmi2:BMI2 fma:FMA f16c:F16C avx_vnni:AVX_VNNI avx512f:AVX512 \
            avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
  case "$cpu" in
    *" ${pair%%:*} "*) args+=" -DGGML_${pair#*:}=ON" ;;
    *) args+=" -DGGML_${pair#*:}=OFF" ;;
  esac
done
echo "$args -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
