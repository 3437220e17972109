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
# The first provision leaves rkhunter's database builds running on the hosts (niced, minutes on 2 cores): timed
# beside them, a no-op measured that load (2.0-2.3 s at load 7), not foobar. The no-ops below start after them.
t=$(now)
for h in lb1 web1 web2; do
  while [ "$(foobar lab ssh "$h" -- systemctl is-active foobar-rkhunter-propupd.service 2>/dev/null)" = activating ]; do sleep 5; done
done
echo "the hosts' background work after it (rkhunter's databases) ended $(since "$t") s later; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# With each run: the CPU time it cost foobar (node: user + system) and the three hosts (sshd, sudo, the facts' shells
# and the processes they start, systemd answering them). On 2 cores shared with the hosts, the sum bounds the run.
. bench/lab-cpu.sh
TIMEFORMAT='%U %S'
timed() {
  local t h cpu
  h=$(lab_cpu)
  t=$(now)
  cpu=$({ time "$@" >/dev/null 2>&1; } 2>&1 | awk '{printf "%.2f", $1 + $2}')
  printf '%s s (CPU: foobar %s s, hosts %s s)' "$(since "$t")" "$cpu" "$(echo "$h $(lab_cpu)" | awk '{printf "%.2f", $2 - $1}')"
}
for i in 1 2 3; do
  echo "no-op provision #$i (whole CLI run, node start included):     $(timed foobar provision -i inventories/lab.yml --yes --json)"
done
echo "plan with nothing to do:                                       $(timed foobar plan -i inventories/lab.yml --json)"

# Where a no-op provision spends its time: every SSH connection and remote command (FOOBAR_TRACE), the slowest first,
# then the run's own steps (lines `trace +T - - step`: node and oclif start, ssh_config, locks, desired states, plans).
trace=$(mktemp)
t=$(now); FOOBAR_TRACE=1 foobar provision -i inventories/lab.yml --yes --json 2>"$trace" >/dev/null
remote=$(grep '^trace ' "$trace" | grep -v '^trace +[0-9.]*s - - ' || true)
echo "traced no-op provision: $(since "$t") s; $(printf '%s\n' "$remote" | grep -c .) remote steps; the slowest:"
printf '%s\n' "$remote" | sort -k4,4 -n -r | head -12 | sed 's/^/  /'
echo "  last remote step ended at $(printf '%s\n' "$remote" | tail -1 | awk '{print $2}') after the CLI started; the run's own steps:"
grep '^trace +[0-9.]*s - - ' "$trace" | sed 's/^trace \(+[0-9.]*s\) - - /  \1 /'
rm -f "$trace"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
