#!/usr/bin/env bash
# Fuzzes the HTTP request parser, the multipart parser and query decoding with libFuzzer.
#
#   tools/fuzz-http.sh [SECONDS] [--update-corpus]
#
# SECONDS (default 20) bounds the run. Without --update-corpus the committed corpus in Fuzz/corpus is only read
# (new inputs go to a scratch directory); with it, new coverage is merged back into Fuzz/corpus.
# Crashes are written to .build/fuzz/artifacts/ and make the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-20}"
update=false
[[ "${2:-}" == "--update-corpus" || "${1:-}" == "--update-corpus" ]] && update=true
[[ "$duration" =~ ^[0-9]+$ ]] || duration=20

out=.build/fuzz
mkdir -p "$out/artifacts" "$out/new-corpus"
# The parser files do no I/O and import nothing outside the standard library (and libc), so they build alone.
sources=(
    Sources/HTTPServer/HTTPTypes.swift
    Sources/HTTPServer/HTTPParser.swift
    Sources/HTTPServer/HTTPError.swift
    Sources/HTTPServer/HTTPRequest.swift
    Sources/HTTPServer/QueryString.swift
    Sources/HTTPServer/Multipart.swift
    Fuzz/HTTPFuzz.swift
)
rm -f "$out/http-fuzz"
swiftc -swift-version 6 -O -g -parse-as-library -module-name HTTPServerFuzz \
    -sanitize=fuzzer,address "${sources[@]}" -o "$out/http-fuzz" 2>&1 | grep -v "Cannot export local symbol" || true
test -x "$out/http-fuzz"

# The Swift backtracer does not run under ASan; without it the runtime still prints the fatal error's message.
export SWIFT_BACKTRACE=enable=no
"$out/http-fuzz" -max_total_time="$duration" -timeout=5 -rss_limit_mb=2048 -max_len=4096 \
    -dict=Fuzz/http.dict -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
    "$out/new-corpus" Fuzz/corpus

if $update; then
    "$out/http-fuzz" -merge=1 -dict=Fuzz/http.dict Fuzz/corpus "$out/new-corpus"
    echo "corpus: $(ls Fuzz/corpus | wc -l) files"
fi
