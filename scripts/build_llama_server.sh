#!/usr/bin/env bash
# Build llama.cpp's own server (llama-server) from the llama.cpp source that the installed llama-cpp-python vendors
# (pinned in pyproject.toml), so `llama.engine = "llama-server"` runs the same engine with continuous batching.
# The source archive comes from PyPI and must match the sha256 pinned below; nothing else is downloaded (the server's
# web page is left out: the build would fetch it from a model hub). Installs
# ${XDG_CACHE_HOME:-~/.cache}/small-first-assistant-builds/llama-server/<version>/llama-server: a build cache like
# pip's wheel cache, outside the cache directory of weights and datasets (CI empties that one on every run, and a
# build proves no download). About 10 minutes on 2 cores; a second run with the same CPU flags does nothing.
# Usage: bash scripts/build_llama_server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A SOURCE_SHA256=(
  [0.3.36]=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
)
version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')
expected=${SOURCE_SHA256[$version]:-}
[ -n "$expected" ] || { echo "error: no pinned sha256 for llama-cpp-python $version's source: add it here" >&2; exit 1; }
target=${XDG_CACHE_HOME:-$HOME/.cache}/small-first-assistant-builds/llama-server/$version
flags=$(bash scripts/llama_cmake_args.sh)
if [ -x "$target/llama-server" ] && [ "$(cat "$target/cmake-args" 2>/dev/null)" = "$flags" ]; then
  echo "$target/llama-server is built already"; exit 0
fi
cmake=$(command -v cmake || true)
if [ -z "$cmake" ]; then  # no system cmake: PyPI's, into the project's environment
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "cmake==4.4.4"
  cmake=.venv/bin/cmake
fi
work=$(mktemp -d -t llama-server-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "downloading llama-cpp-python $version's source (75 MB)..." >&2
# --no-binary for this package only: pip prepares the sdist's metadata in a build environment, and with ":all:" it
# built that environment's requirements from source too (without a system cmake, scikit-build-core asks for cmake,
# and pip bootstrapped cmake from its source: many minutes on 2 cores)
.venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --no-binary llama-cpp-python \
  "llama-cpp-python==$version" -d "$work"
archive="$work/llama_cpp_python-$version.tar.gz"
echo "$expected  $archive" | sha256sum --check --quiet - \
  || { echo "error: llama-cpp-python $version's source does not match the pinned sha256" >&2; exit 1; }
tar -xzf "$archive" -C "$work"
# The same CPU flags as the llama-cpp-python build (scripts/llama_cmake_args.sh), static, server only.
# shellcheck disable=SC2046
"$cmake" -S "$work/llama_cpp_python-$version/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF $flags >"$work/configure.log" \
  || { cat "$work/configure.log" >&2; exit 1; }
echo "building llama-server (about 10 minutes on 2 cores)..." >&2
"$cmake" --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p "$target"
install -m 755 "$work/build/bin/llama-server" "$target/llama-server.partial"
mv "$target/llama-server.partial" "$target/llama-server"
echo "$flags" >"$target/cmake-args"
"$target/llama-server" --version 2>&1 | tail -2
echo "built $target/llama-server"
