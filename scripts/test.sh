#!/bin/sh
# `npm test`'s vitest runs, after the build and lint: the unit project on every core, then the lab project alone.
# The unit files are independent of each other: vitest's default on a 2-core machine is one worker (cores - 1),
# which left a core idle for most of the unit suite (338 s with one worker, 256 s with two, on 2 cores). The lab
# files share one lab and run one at a time, with nothing else on the machine's cores (their failure tests count
# requests under load). Both runs happen even when the first fails; the exit code is the first failure's, and the
# closing lines count both, `N passed, N failed, N skipped, N errors`, then name each error (an unhandled error or a
# file's own, which fail a run whose tests all pass), the slow steps a lab test wrote to the summary file, and each
# run that exited non-zero.
# Arguments (a file filter, `-t NAME`) go to both runs; a run they select nothing in passes.
set -u
cd "$(dirname "$0")/.."
FOOBAR_TEST_SUMMARY=$(mktemp)
export FOOBAR_TEST_SUMMARY
trap 'rm -f "$FOOBAR_TEST_SUMMARY"' EXIT
npx vitest run --project unit --maxWorkers "$(nproc)" --passWithNoTests "$@"
unit=$?
npx vitest run --project lab --passWithNoTests "$@"
lab=$?
awk '/^(error|slow step): / {e[++n] = $0; next} {p += $1; f += $2; s += $3; x += $4}
  END {printf "\nunit and lab together:\n%d passed, %d failed, %d skipped, %d errors\n", p, f, s, x; for (i = 1; i <= n; i++) print e[i]}' \
  "$FOOBAR_TEST_SUMMARY"
[ "$unit" -ne 0 ] && echo "the unit run exited $unit"
[ "$lab" -ne 0 ] && echo "the lab run exited $lab"
[ "$unit" -ne 0 ] && exit "$unit"
exit "$lab"
