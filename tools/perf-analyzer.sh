#!/usr/bin/env bash
# Measures POST /v2/models/{name}/infer of `cbam-serve serve` with Triton's perf_analyzer, at concurrency 1, 4 and 8,
# and prints a Markdown table (throughput, p50/p99 latency, errors) with the exact commands.
#
#   tools/perf-analyzer.sh [MODEL_DIR]
#
# Environment: CBAM_SERVE_BIN (default .build/release/cbam-serve), PA_INTERVAL_MS (measurement window, 5000),
# PA_CONCURRENCY ("1 4 8"), PA_BATCH (images per request, 1), and any CBAM_* variable for the server
# (CBAM_THREADS, CBAM_MAX_BATCH_SIZE, CBAM_MAX_BATCH_DELAY_MS, ...).
#
# perf_analyzer itself: PyPI's `perf-analyzer` (0.1.0) is an empty placeholder, so the binary is taken from the
# manylinux wheel of tritonclient 2.41.0, the last that ships it. It links libb64 (Debian: libb64-0d) and the CUDA
# runtime libcudart.so.12 (pip: nvidia-cuda-runtime-cu12), though it uses no GPU against an HTTP server.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_DIR="${1:-models/cbam-resnet10-cifar10}"
[ -f "$MODEL_DIR/config.json" ] || MODEL_DIR=Tests/CBAMServiceTests/Fixtures/model
BIN="${CBAM_SERVE_BIN:-.build/release/cbam-serve}"
INTERVAL="${PA_INTERVAL_MS:-5000}"
CONCURRENCY="${PA_CONCURRENCY:-1 4 8}"
BATCH="${PA_BATCH:-1}"
CACHE=.build/perf-analyzer
mkdir -p "$CACHE"

# --- perf_analyzer ---------------------------------------------------------------------------------------------
PA="$(command -v perf_analyzer || true)"
if [ -z "$PA" ] || ! "$PA" --version >/dev/null 2>&1; then
    PA="$CACHE/bin/perf_analyzer"
    if [ ! -x "$PA" ]; then
        python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
            'tritonclient==2.41.0' -d "$CACHE/wheels"
        python3 - "$CACHE" <<'EOF'
import sys, zipfile, glob, os
cache = sys.argv[1]
wheel = glob.glob(f"{cache}/wheels/tritonclient-2.41.0-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("tritonclient-2.41.0.data/data/bin/perf_analyzer")
os.makedirs(f"{cache}/bin", exist_ok=True)
with open(f"{cache}/bin/perf_analyzer", "wb") as f:
    f.write(data)
os.chmod(f"{cache}/bin/perf_analyzer", 0o755)
EOF
    fi
    if ! ldconfig -p | grep -q 'libb64.so.0d'; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get install -y -qq libb64-0d >/dev/null
    fi
    if [ ! -e "$CACHE/lib/libcudart.so.12" ]; then
        python3 -m pip download -q --no-deps --only-binary=:all: 'nvidia-cuda-runtime-cu12' -d "$CACHE/wheels"
        python3 - "$CACHE" <<'EOF'
import sys, zipfile, glob, os
cache = sys.argv[1]
wheel = sorted(glob.glob(f"{cache}/wheels/nvidia_cuda_runtime_cu12-*.whl"))[-1]
os.makedirs(f"{cache}/lib", exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/libcudart.so.12"))
    with open(f"{cache}/lib/libcudart.so.12", "wb") as f:
        f.write(z.read(name))
EOF
    fi
    export LD_LIBRARY_PATH="$PWD/$CACHE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# --- input data: real preprocessed tensors (the model's input.npy) or standard-normal ones ----------------------
NAME="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$MODEL_DIR/config.json")"
DATA="$CACHE/input-$NAME.json"
python3 - "$MODEL_DIR" "$DATA" <<'EOF'
import json, sys, os
import numpy as np
model_dir, out = sys.argv[1], sys.argv[2]
size = json.load(open(os.path.join(model_dir, "config.json")))["input"]["size"]
npy = os.path.join(model_dir, "input.npy")
x = np.load(npy) if os.path.exists(npy) else np.random.default_rng(0).standard_normal((4, 3, size, size)).astype(np.float32)
# perf_analyzer sends only the inputs named here: the FP32 tensor, not the optional BYTES image input.
json.dump({"data": [{"input": {"content": x[i].ravel().tolist(), "shape": list(x.shape[1:])}} for i in range(x.shape[0])]},
          open(out, "w"))
EOF

# --- the server --------------------------------------------------------------------------------------------------
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$CACHE/serve.log"
CBAM_HOST=127.0.0.1 CBAM_PORT="$PORT" CBAM_MODEL="$MODEL_DIR" CBAM_LOG_LEVEL="${CBAM_LOG_LEVEL:-warning}" \
    "$BIN" serve >"$LOG" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done

# --- measure -----------------------------------------------------------------------------------------------------
echo "model: $NAME ($MODEL_DIR), server: $BIN, cores: $(nproc), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "server env: $(env | grep '^CBAM_' | sort | tr '\n' ' ')"
echo
echo "| concurrency | throughput (infer/s) | p50 latency (ms) | p99 latency (ms) | errors |"
echo "|---|---|---|---|---|"
status=0
for c in $CONCURRENCY; do
    csv="$CACHE/pa-c$c.csv"
    rm -f "$csv"
    cmd=("$PA" -m "$NAME" -u "127.0.0.1:$PORT" -i http -b "$BATCH" --concurrency-range "$c:$c"
         --measurement-interval "$INTERVAL" --stability-percentage "${PA_STABILITY:-15}" --max-trials 20
         --input-data "$DATA" -f "$csv")
    before="$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^cbam_http_requests_total\{route="\/v2\/models\/\{name\}\/infer"/ && !/status="200"/ {s+=$2} END {print s+0}')"
    if ! "${cmd[@]}" >"$CACHE/pa-c$c.log" 2>&1; then
        status=1
        tail -5 "$CACHE/pa-c$c.log" >&2
    fi
    after="$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^cbam_http_requests_total\{route="\/v2\/models\/\{name\}\/infer"/ && !/status="200"/ {s+=$2} END {print s+0}')"
    python3 - "$csv" "$c" "$((after - before))" <<'EOF'
import csv, os, sys
path, c, errors = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not os.path.exists(path):
    print(f"| {c} | no stable measurement | | | {errors} |")
    sys.exit(0)
rows = list(csv.DictReader(open(path)))
row = rows[-1]
print(f"| {c} | {float(row['Inferences/Second']):.1f} | {int(row['p50 latency'])/1000:.2f} | {int(row['p99 latency'])/1000:.2f} | {errors} |")
EOF
    [ "$((after - before))" -eq 0 ] || status=1
done
echo
echo "command per row: ${PA##*/} -m $NAME -u 127.0.0.1:PORT -i http -b $BATCH --concurrency-range C:C --measurement-interval $INTERVAL --stability-percentage ${PA_STABILITY:-15} --max-trials 20 --input-data $DATA"
echo "batch sizes the server formed: $(curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^cbam_inference_batch_size_(sum|count)' | tr '\n' ' ')"
exit $status
