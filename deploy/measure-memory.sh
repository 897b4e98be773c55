#!/usr/bin/env bash
# Memory one cbam-serve replica needs, for the Deployment's requests/limits: resident set after start
# (VmRSS) and its peak under load (VmHWM), read from /proc while wrk posts JPEGs to /v1/predict,
# half of them asking for all attention maps (those are kept in the attention store, part of the peak).
#
#   deploy/measure-memory.sh [path/to/cbam-serve]
#   env: THREADS (2, = the pod's CPU limit), CONCURRENCY (16), DURATION (60s), IMAGE (a JPEG; default: a
#        generated 640x480 photo-sized one), and any CBAM_* setting to measure a non-default configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/measure-common.sh

BIN="${1:-$(swift build -c release --show-bin-path)/cbam-serve}"
THREADS="${THREADS:-2}" CONCURRENCY="${CONCURRENCY:-16}" DURATION="${DURATION:-60s}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no cbam-serve binary at $BIN (swift build -c release --product cbam-serve)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

IMAGE="${IMAGE:-$work/photo.jpg}"
if [ ! -f "$IMAGE" ]; then
    # A smooth 640x480 gradient with noise: compresses like a photo, decodes at full size.
    python3 - "$work/photo.ppm" <<'PY'
import random, sys
w, h = 640, 480
random.seed(7)
pixels = bytearray()
for y in range(h):
    for x in range(w):
        n = random.randint(-12, 12)
        pixels += bytes(max(0, min(255, v + n)) for v in (x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)))
open(sys.argv[1], "wb").write(b"P6 %d %d 255\n" % (w, h) + bytes(pixels))
PY
    cjpeg -quality 90 "$work/photo.ppm" > "$IMAGE"
fi

port="$(free_port)"
CBAM_HOST=127.0.0.1 CBAM_PORT="$port" CBAM_THREADS="$THREADS" CBAM_LOG_LEVEL="${CBAM_LOG_LEVEL:-warning}" \
    "$BIN" serve & pid=$!
wait_until_healthy "$port" "$pid"
sleep 2
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
idle_kib="$(kib VmRSS)"

{ post_jpeg_lua "$IMAGE"; cat <<'LUA'; } > "$work/post.lua"
local n = 0
request = function()
  n = n + 1
  local path = (n % 2 == 0) and "/v1/predict?attention=all" or "/v1/predict"
  return wrk.format(nil, path)
end
LUA
wrk -t2 -c"$CONCURRENCY" -d"$DURATION" --latency -s "$work/post.lua" "http://127.0.0.1:$port" | tee "$work/wrk.txt"

peak_kib="$(kib VmHWM)"
after_kib="$(kib VmRSS)"
echo
echo "binary:        $BIN"
echo "settings:      THREADS=$THREADS CONCURRENCY=$CONCURRENCY DURATION=$DURATION IMAGE=$(wc -c < "$IMAGE") bytes"
echo "idle VmRSS:    $((idle_kib / 1024)) MiB"
echo "peak VmHWM:    $((peak_kib / 1024)) MiB   <- 'Peak memory per replica' in deploy/README.md"
echo "after VmRSS:   $((after_kib / 1024)) MiB"
if grep -qE "Non-2xx|Socket errors" "$work/wrk.txt"; then
    echo "some requests failed (above): the peak was not measured under real work" >&2
    exit 1
fi
echo "all responses 2xx"
