#!/usr/bin/env bash
# Times the response JSON encoder against the string concatenation it replaced and Foundation's JSONEncoder.
#   tools/bench-json.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cp tools/bench_json.swift "$out/main.swift"
swiftc -O -swift-version 6 -package-name cbam_serve -module-name BenchJSON Sources/HTTPCore/*.swift "$out/main.swift" -o "$out/bench-json"
"$out/bench-json"
