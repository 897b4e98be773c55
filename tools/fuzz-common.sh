# Shared by tools/fuzz-*.sh (sourced, not run): arguments, the regression replay and the libFuzzer run.
#
#   tools/fuzz-TARGET.sh [SECONDS] [--update-corpus]
#
# SECONDS (default 20) bounds the run. Every file in Fuzz/regressions/TARGET/ is replayed first and must pass.
# Without --update-corpus the committed corpus is only read (new inputs go to a scratch directory); with it,
# new coverage is merged back into the corpus. Crashes, leaks and allocations over the malloc limit are written
# to .build/fuzz/TARGET/artifacts/ and make the script fail: copy each into Fuzz/regressions/TARGET/.
#
# Fuzz/regressions/known-open.txt lists kinds of finding that are reported but not fixed yet ("png out-of-memory"):
# for those, a failing replay prints a warning, and the run goes on past them in fork mode and lists what it
# found, instead of failing. The line goes with the fix.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzz_duration=20
fuzz_update=false
for argument in "$@"; do
    case "$argument" in
        --update-corpus) fuzz_update=true ;;
        *) [[ "$argument" =~ ^[0-9]+$ ]] && fuzz_duration="$argument" ;;
    esac
done

# The Swift backtracer does not run under ASan; without it the runtime still prints the fatal error's message.
export SWIFT_BACKTRACE=enable=no

# fuzz_prepare TARGET: sets fuzz_out (scratch directory) and fuzz_binary.
fuzz_prepare() {
    fuzz_target="$1"
    fuzz_out=".build/fuzz/$fuzz_target"
    fuzz_binary=".build/fuzz/$fuzz_target-fuzz"
    mkdir -p "$fuzz_out/artifacts" "$fuzz_out/new-corpus"
    rm -f "$fuzz_binary"
}

# fuzz_build_c SOURCE... -- LIBS...: a C harness and the C files it tests, with ASan and libFuzzer.
fuzz_build_c() {
    local sources=() libraries=()
    while (($#)) && [[ "$1" != "--" ]]; do sources+=("$1"); shift; done
    (($#)) && shift
    libraries=("$@")
    clang -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Wall -Werror -ISources/CPNG/include -ISources/CJPEG/include \
        "${sources[@]}" "${libraries[@]}" -o "$fuzz_binary" 2>&1 | grep -v "Cannot export local symbol" || true
    test -x "$fuzz_binary"
}

# fuzz_build_swift MODULE SOURCE...: Swift sources (harness included) with ASan and libFuzzer.
fuzz_build_swift() {
    local module="$1"; shift
    swiftc -swift-version 6 -O -g -parse-as-library -module-name "$module" -package-name cbam_serve \
        -sanitize=fuzzer,address "$@" -o "$fuzz_binary" 2>&1 | grep -v "Cannot export local symbol" || true
    test -x "$fuzz_binary"
}

# fuzz_known_open KIND: whether known-open.txt lists KIND for this target.
fuzz_known_open() {
    [[ -f Fuzz/regressions/known-open.txt ]] &&
        sed 's/[[:space:]]*#.*//' Fuzz/regressions/known-open.txt | grep -qxF "$fuzz_target $1"
}

# fuzz_kind LOG: the kind of finding libFuzzer reported in LOG ("out-of-memory", "deadly signal", ...).
fuzz_kind() {
    grep -m1 -oE 'libFuzzer: [a-z -]+' "$1" | sed 's/libFuzzer: //; s/ *$//' ||
        { grep -q 'ERROR: AddressSanitizer' "$1" && echo "deadly signal"; } || echo "crash"
}

# fuzz_replay FLAGS...: runs every regression file once; a failure of a kind not known to be open fails the script.
fuzz_replay() {
    local dir="Fuzz/regressions/$fuzz_target" file kind failed=0 count=0 reproduced=""
    [[ -d "$dir" ]] || { echo "$fuzz_target: no regressions"; return 0; }
    for file in "$dir"/*; do
        [[ -f "$file" ]] || continue
        count=$((count + 1))
        "$fuzz_binary" "$@" "$file" >"$fuzz_out/replay.log" 2>&1 && continue
        kind="$(fuzz_kind "$fuzz_out/replay.log")"
        if fuzz_known_open "$kind"; then
            echo "$fuzz_target: known open ($kind), still reproduces: $file"
            reproduced=yes
        else
            echo "$fuzz_target: regression FAILS ($kind): $file"
            tail -n 30 "$fuzz_out/replay.log"
            failed=1
        fi
    done
    echo "$fuzz_target: replayed $count regression file(s)"
    if ((failed == 0 && count > 0)) && [[ -z "$reproduced" ]] && fuzz_known_open out-of-memory; then
        echo "$fuzz_target: every regression passes; if the fix has landed, drop '$fuzz_target out-of-memory' from known-open.txt"
    fi
    return "$failed"
}

# fuzz_run CORPUS FLAGS...: the timed run over the committed corpus (read-only unless --update-corpus).
# With a known open out-of-memory finding it runs in fork mode, so that those do not end it, and lists them;
# any other finding still fails.
fuzz_run() {
    local corpus="$1"; shift
    if ! fuzz_known_open out-of-memory; then
        "$fuzz_binary" "$@" -max_total_time="$fuzz_duration" -artifact_prefix="$fuzz_out/artifacts/" \
            -print_final_stats=1 "$fuzz_out/new-corpus" "$corpus"
    else
        local stamp="$fuzz_out/run.stamp" rc=0 others ooms
        touch "$stamp"
        "$fuzz_binary" "$@" -fork=1 -ignore_ooms=1 -max_total_time="$fuzz_duration" \
            -artifact_prefix="$fuzz_out/artifacts/" -print_final_stats=1 "$fuzz_out/new-corpus" "$corpus" || rc=$?
        ooms="$(find "$fuzz_out/artifacts" -newer "$stamp" -name 'oom-*' | wc -l)"
        others="$(find "$fuzz_out/artifacts" -newer "$stamp" -type f ! -name 'oom-*')"
        echo "$fuzz_target: $ooms new out-of-memory input(s) (known open) in $fuzz_out/artifacts"
        if [[ -n "$others" ]] || { ((rc != 0)) && ((ooms == 0)); }; then
            echo "$fuzz_target: FAILED (exit $rc): ${others:-no artifact}"
            return 1
        fi
    fi
    if $fuzz_update; then
        "$fuzz_binary" "$@" -merge=1 "$corpus" "$fuzz_out/new-corpus"
        echo "corpus: $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) kB"
    fi
}
