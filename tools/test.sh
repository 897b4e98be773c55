#!/usr/bin/env bash
# Runs every test of the project: the Swift test targets, then the Python tests under Tests/python.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
python3 -m pip install -q -r tools/requirements-test.txt
swift build -c release --product cbam-serve
# Serially: the socket tests block threads, and a 2-core machine has a 2-thread concurrency pool.
swift test --disable-xctest --no-parallel 2>&1 | tee .build/swift-test.log
# The engine again with each lower instruction set of its C kernels (the GEMM, Winograd's F(4x4) transforms) this CPU
# can stand in for (CBAM_KERNELS chooses one; the tests above ran the best one): the fallbacks must give the same
# answers.
for isa in avx2 portable; do
    echo "engine tests with CBAM_KERNELS=$isa"
    CBAM_KERNELS=$isa swift test --disable-xctest --skip-build --filter "ParityTests|WinogradTests|KernelTests" 2>&1 | tail -n 1
done
# Short libFuzzer runs over the committed corpora, each after replaying its regression files: the HTTP and
# multipart parsers, the PNG and JPEG decoders and the Open Inference Protocol request decoder.
bash tools/fuzz-http.sh 20 2>&1 | tail -n 5
for target in png jpeg oip; do
    log=".build/fuzz-$target.log"
    bash "tools/fuzz-$target.sh" 12 >"$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
    grep -E "^$target: |^stat::(number_of_executed_units|peak_rss_mb)" "$log"
done
if ls Tests/python/test_*.py >/dev/null 2>&1; then
    CBAM_SERVE_BIN="$(swift build -c release --show-bin-path)/cbam-serve" python3 -m pytest -q Tests/python
fi
