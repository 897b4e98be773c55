#!/usr/bin/env bash
# Fuzzes the Open Inference Protocol request decoder (JSON and binary tensor data,
# Sources/CBAMService/InferenceProtocolRequest.swift) with libFuzzer and AddressSanitizer, over the seed corpus
# Fuzz/corpus-oip (tools/make_image_fixtures.py --fuzz-corpus).
#
#   tools/fuzz-oip.sh [SECONDS] [--update-corpus]      (see tools/fuzz-common.sh)
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"

fuzz_prepare oip
# The decoder needs only Foundation and the error type, so it builds without the rest of the service.
fuzz_build_swift InferenceProtocolFuzz \
    Sources/CBAMService/InferenceProtocolRequest.swift \
    Sources/HTTPCore/*.swift \
    Fuzz/OIPFuzz.swift
flags=(-timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 -max_len=16384 -dict=Fuzz/oip.dict)
fuzz_replay "${flags[@]}"
fuzz_run Fuzz/corpus-oip "${flags[@]}"
