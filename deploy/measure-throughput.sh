#!/usr/bin/env bash
# Images per second one cbam-serve replica answers: the server pinned to CORES with taskset, wrk posting one
# JPEG to /v1/predict at CONCURRENCY (enough to keep batches full) from the cores the server does not use.
#
#   deploy/measure-throughput.sh [path/to/cbam-serve]
#   env: CORES (0: one core; 0,1: two), THREADS (OpenBLAS threads, default: one per core in CORES),
#        CONCURRENCY (16), DURATION (20s), IMAGE (default: a sample photo of the default model)
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/measure-common.sh

BIN="${1:-$(swift build -c release --show-bin-path)/cbam-serve}"
CORES="${CORES:-0}" CONCURRENCY="${CONCURRENCY:-16}" DURATION="${DURATION:-20s}"
THREADS="${THREADS:-$(tr ',' '\n' <<<"$CORES" | wc -l)}"
IMAGE="${IMAGE:-models/cbam-resnet10-cifar10/samples/cat_0013.jpg}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

all="$(seq -s, 0 $(($(nproc) - 1)))"
others="$(comm -23 <(tr ',' '\n' <<<"$all" | sort) <(tr ',' '\n' <<<"$CORES" | sort) | paste -sd,)"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

port="$(free_port)"
CBAM_HOST=127.0.0.1 CBAM_PORT="$port" CBAM_THREADS="$THREADS" CBAM_LOG_LEVEL=warning \
    taskset -c "$CORES" "$BIN" serve & pid=$!
wait_until_healthy "$port" "$pid"

post_jpeg_lua "$IMAGE" > "$work/post.lua"
taskset -c "${others:-$CORES}" wrk -t1 -c"$CONCURRENCY" -d"$DURATION" --latency -s "$work/post.lua" \
    "http://127.0.0.1:$port/v1/predict" | tee "$work/wrk.txt"
batches="$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^cbam_inference_batch_size_(sum|count)/ { v[$1] = $2 } END { printf "%.2f", v["cbam_inference_batch_size_sum"] / v["cbam_inference_batch_size_count"] }')"
echo
echo "server cores:  $CORES (CBAM_THREADS=$THREADS), wrk on: ${others:-$CORES}, concurrency $CONCURRENCY, $DURATION"
echo "images/s:      $(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.txt")   mean batch: $batches"
if grep -qE "Non-2xx|Socket errors" "$work/wrk.txt"; then
    echo "some requests failed (above)" >&2
    exit 1
fi
