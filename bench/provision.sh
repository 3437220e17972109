#!/usr/bin/env bash
# Provision timings on the lab stack (lb1, web1, web2): a first provision of bare hosts, then no-op re-runs.
# Needs root and a build (`npm run build`). Brings up its own lab and leaves none running.
set -euo pipefail
cd "$(dirname "$0")/.."

foobar() { node bin/run.js "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }

trap 'foobar lab down --purge >/dev/null 2>&1 || true' EXIT
foobar lab down --purge >/dev/null
foobar lab up >/dev/null

t=$(now); foobar provision -i inventories/lab.yml --yes --json >/dev/null
echo "first provision (bare hosts, packages through the apt proxy): $(since "$t") s"
for i in 1 2 3; do
  t=$(now); foobar provision -i inventories/lab.yml --yes --json >/dev/null
  echo "no-op provision #$i (whole CLI run, node start included):     $(since "$t") s"
done
t=$(now); foobar plan -i inventories/lab.yml --detailed-exitcode --json >/dev/null
echo "plan with nothing to do:                                       $(since "$t") s"
