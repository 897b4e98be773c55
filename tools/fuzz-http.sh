#!/usr/bin/env bash
# Fuzzes the HTTP request parser, the multipart parser and query decoding with libFuzzer and AddressSanitizer,
# over the committed corpus Fuzz/corpus.
#
#   tools/fuzz-http.sh [SECONDS] [--update-corpus]     (see tools/fuzz-common.sh)
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"

fuzz_prepare http
# HTTPCore does no I/O and depends on no other target, so the whole target builds alone with the fuzz driver.
fuzz_build_swift HTTPServerFuzz Sources/HTTPCore/*.swift Fuzz/HTTPFuzz.swift
flags=(-timeout=5 -malloc_limit_mb=256 -rss_limit_mb=2048 -max_len=4096 -dict=Fuzz/http.dict)
fuzz_replay "${flags[@]}"
fuzz_run Fuzz/corpus "${flags[@]}"
