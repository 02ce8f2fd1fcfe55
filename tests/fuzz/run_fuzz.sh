#!/usr/bin/env bash
# run_fuzz.sh TARGET [LIBFUZZER ARGS...] WORKDIR SEEDDIR — one short fuzz run (meson test
# suite `fuzz`, tests/fuzz/meson.build). Makes the work corpus and artifact directories, runs
# the target, and on a crash prints the reproducer(s) and the command that replays one; any
# failure exits 1.
set -uo pipefail
target=$1
shift
work=${*: -2:1}
artifacts=
for a in "$@"; do
    case $a in -artifact_prefix=*) artifacts=${a#-artifact_prefix=} ;; esac
done
mkdir -p "$work" "$(dirname "$artifacts")" || exit 1
before=$(date +%s)
"$target" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "fuzz: $(basename "$target") failed (exit $rc); reproducers:" >&2
    found=0
    while IFS= read -r f; do
        found=1
        echo "  $f    (replay: $target $f)" >&2
    done < <(find "$(dirname "$artifacts")" -name "$(basename "$artifacts")*" -newermt "@$before" 2>/dev/null)
    [ "$found" -eq 0 ] && echo "  (none written: see the output above)" >&2
    exit 1      # libFuzzer's 77 would be a skip to meson, 99 a setup error
fi
exit 0
