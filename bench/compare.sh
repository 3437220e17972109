#!/usr/bin/env bash
# Two builds of foobar, run in turn on the same lab: the median wall time, CPU time (user + system of the foobar
# process) and the lab's hosts' CPU time (bench/lab-cpu.sh) of each over N rounds, and their ratios. On a shared,
# noisy machine a ratio of runs taken seconds apart says more than figures taken minutes apart.
#
#   bench/compare.sh OTHER_CHECKOUT [N] [-- foobar arguments]
#
# OTHER_CHECKOUT: another checkout, built (`npm run build`), e.g. `git worktree add --detach ../old HEAD~3`. Both must
# read the same lab state: copy this checkout's inventories/.foobar into it. Default command: a plan of the lab
# (`plan -i inventories/lab.yml --json`); the lab must be up and provisioned. N: rounds (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
other=${1:?usage: bench/compare.sh OTHER_CHECKOUT [N] [-- foobar arguments]}
other=$(cd "$other" && pwd)
shift
n=8
if [ $# -gt 0 ] && [ "$1" != "--" ]; then n=$1; shift; fi
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(plan -i inventories/lab.yml --json)
[ -f "$other/oclif.manifest.json" ] || { echo "$other: not built (npm run build)" >&2; exit 2; }

. bench/lab-cpu.sh
timing=$(mktemp)
trap 'rm -f "$timing"' EXIT
run() { # dir -> "wall_ms cpu_ms hosts_cpu_ms"
  local s e h
  h=$(lab_cpu)
  s=$(date +%s%N)
  (cd "$1" && /usr/bin/time -f '%U %S' -o "$timing" node bin/run.js "${args[@]}" >/dev/null 2>&1) || true
  e=$(date +%s%N)
  echo "$(((e - s) / 1000000)) $(awk '{printf "%.0f", ($1 + $2) * 1000}' "$timing") $(echo "$(lab_cpu) $h" | awk '{printf "%.0f", ($1 - $2) * 1000}')"
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "foobar ${args[*]}: $n rounds, this checkout and $other in turn (load average $(cut -d' ' -f1-3 /proc/loadavg))"
this_w=() this_c=() this_h=() other_w=() other_c=() other_h=()
for i in $(seq "$n"); do
  read -r w c h < <(run "$other")
  other_w+=("$w") other_c+=("$c") other_h+=("$h")
  sleep 1
  read -r w c h < <(run "$PWD")
  this_w+=("$w") this_c+=("$c") this_h+=("$h")
  echo "  round $i: other ${other_w[-1]} ms (CPU ${other_c[-1]} ms, hosts ${other_h[-1]} ms), this ${this_w[-1]} ms (CPU ${this_c[-1]} ms, hosts ${this_h[-1]} ms)"
  sleep 1
done
tw=$(printf '%s\n' "${this_w[@]}" | median) tc=$(printf '%s\n' "${this_c[@]}" | median)
ow=$(printf '%s\n' "${other_w[@]}" | median) oc=$(printf '%s\n' "${other_c[@]}" | median)
echo "median wall: this $tw ms, other $ow ms, ratio $(awk -v a="$tw" -v b="$ow" 'BEGIN {printf "%.2f", a / b}')"
echo "median CPU:  this $tc ms, other $oc ms, ratio $(awk -v a="$tc" -v b="$oc" 'BEGIN {printf "%.2f", a / b}')"
th=$(printf '%s\n' "${this_h[@]}" | median) oh=$(printf '%s\n' "${other_h[@]}" | median)
echo "median hosts' CPU: this $th ms, other $oh ms, ratio $(awk -v a="$th" -v b="$oh" 'BEGIN {printf "%.2f", b ? a / b : 0}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
