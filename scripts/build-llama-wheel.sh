#!/bin/sh
# Builds llama-cpp-python for the embedded model with a portable CPU baseline, into a wheel folder
# of the project's own keyed by version and build flags, and prints the wheel's path.
#
# Why: llama.cpp's default build uses the build machine's native CPU flags (GGML_NATIVE=ON), and
# pip caches wheels by version, not by flags: a wheel built on a CPU with AMX or AVX-512 dies with
# SIGILL on another. So the flags are fixed here (x86-64: AVX2+FMA+F16C, the baseline of every
# x86-64 CPU sold since 2015; ARM64: the compiler's armv8-a default), pip's cache is bypassed, and
# the wheel is reused only by a build that asks for the same version and flags.
# Usage: build-llama-wheel.sh PYTHON   (override the flags with LLAMA_CMAKE_ARGS; LLAMA_REBUILD=1
# builds again even when a wheel for these flags exists). Measurements: docs/install.md.
set -eu
PY="${1:-python3}"
VERSION="0.3.36"
case "$(uname -m)" in
    x86_64|amd64)
        DEFAULT_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" ;;
    *)
        DEFAULT_ARGS="-DGGML_NATIVE=OFF" ;;
esac
ARGS="${LLAMA_CMAKE_ARGS:-$DEFAULT_ARGS}"
KEY="$(printf '%s %s %s' "$VERSION" "$(uname -m)" "$ARGS" | sha256sum | cut -c1-12)"
DIR="${RLM_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rlm-research/wheels}/llama-cpp-python-$VERSION-$KEY"
if [ "${LLAMA_REBUILD:-0}" = 1 ]; then rm -rf "$DIR"; fi
WHEEL="$(ls "$DIR"/llama_cpp_python-*.whl 2>/dev/null | head -n 1 || true)"
if [ -z "$WHEEL" ]; then
    echo "building llama-cpp-python $VERSION (portable: $ARGS); about 5-8 minutes on 2 cores" >&2
    mkdir -p "$DIR.tmp"
    CMAKE_ARGS="$ARGS" "$PY" -m pip wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
        -w "$DIR.tmp" "llama-cpp-python==$VERSION" >&2
    rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
    printf '%s\n' "$ARGS" > "$DIR/CMAKE_ARGS"
    WHEEL="$(ls "$DIR"/llama_cpp_python-*.whl | head -n 1)"
fi
echo "$WHEEL"
