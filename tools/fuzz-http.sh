#!/usr/bin/env bash
# Fuzzes the HTTP request parser, the multipart parser and query decoding with libFuzzer and AddressSanitizer,
# over the committed corpus Fuzz/corpus.
#
#   tools/fuzz-http.sh [SECONDS] [--update-corpus]     (see tools/fuzz-common.sh)
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"

fuzz_prepare http
# The parser files do no I/O and import nothing outside the standard library (and libc), so they build alone.
fuzz_build_swift HTTPServerFuzz \
    Sources/HTTPServer/HTTPTypes.swift \
    Sources/HTTPServer/HTTPParser.swift \
    Sources/HTTPServer/HTTPError.swift \
    Sources/HTTPServer/JSONBodyEncoder.swift \
    Sources/HTTPServer/HTTPRequest.swift \
    Sources/HTTPServer/QueryString.swift \
    Sources/HTTPServer/Multipart.swift \
    Fuzz/HTTPFuzz.swift
flags=(-timeout=5 -malloc_limit_mb=256 -rss_limit_mb=2048 -max_len=4096 -dict=Fuzz/http.dict)
fuzz_replay "${flags[@]}"
fuzz_run Fuzz/corpus "${flags[@]}"
