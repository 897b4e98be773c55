#!/usr/bin/env bash
# Fuzzes the PNG decoder (Sources/CPNG/PNGDecode.c, through include/CPNG.h) with libFuzzer, AddressSanitizer
# and a 256 MB malloc limit, over the seed corpus Fuzz/corpus-png (tools/make_image_fixtures.py --fuzz-corpus).
#
#   tools/fuzz-png.sh [SECONDS] [--update-corpus]      (see tools/fuzz-common.sh)
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"

fuzz_prepare png
fuzz_build_c Fuzz/PNGFuzz.c Sources/CPNG/PNGDecode.c -- -lpng16
flags=(-timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 -max_len=65536 -dict=Fuzz/png.dict)
fuzz_replay "${flags[@]}"
fuzz_run Fuzz/corpus-png "${flags[@]}"
