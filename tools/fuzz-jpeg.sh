#!/usr/bin/env bash
# Fuzzes the JPEG decoder (Sources/CJPEG/JPEGDecode.c, through include/CJPEG.h) with libFuzzer,
# AddressSanitizer and a 256 MB malloc limit, over the seed corpus Fuzz/corpus-jpeg
# (tools/make_image_fixtures.py --fuzz-corpus).
#
#   tools/fuzz-jpeg.sh [SECONDS] [--update-corpus]     (see tools/fuzz-common.sh)
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"

fuzz_prepare jpeg
fuzz_build_c Fuzz/JPEGFuzz.c Sources/CJPEG/JPEGDecode.c -- -ljpeg
flags=(-timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 -max_len=65536 -dict=Fuzz/jpeg.dict)
fuzz_replay "${flags[@]}"
fuzz_run Fuzz/corpus-jpeg "${flags[@]}"
