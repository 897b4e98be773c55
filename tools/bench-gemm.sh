#!/usr/bin/env bash
# Times the engine's GEMM kernel (every instruction set this CPU runs) against OpenBLAS's sgemm, one thread, on the
# shapes the engine's convolutions produce; prints a Markdown table of GFLOP/s. Needs clang (or cc) and
# libopenblas-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/bench-gemm
mkdir -p .build
"${CC:-clang}" -O2 -ISources/CBAMKernels/include $(pkg-config --cflags openblas) tools/bench_gemm.c Sources/CBAMKernels/*.c \
    -o "$out" $(pkg-config --libs openblas) -lpthread -lm
"$out"
