#!/usr/bin/env bash
# What a lab host's CPU pays for foobar's work apart from foobar's own scripts (issue 20): an SSH connection (sshd,
# its PAM session and the motd scripts that session runs), a sudo, and one process started (fork and exec), each
# repeated and read with bench/lab-cpu.sh (the hosts' CPU, apart from this machine's other tenants); then a plan of
# the lab with nothing to do, split into foobar's CPU and the hosts'. These are the floor under a no-op run and
# under the fan-out: every host is one connection, one sudo and its facts, and here the lab's hosts share this
# machine's cores with foobar. Needs root, a build and a provisioned lab (`foobar lab up`, `foobar provision -i
# inventories/lab.yml --yes`); leaves the lab as it is. N=rounds (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lab-cpu.sh
N=${N:-10}
KEY=/var/lib/foobar-lab/ssh/id_ed25519
KNOWN=/var/lib/foobar-lab/known_hosts
HOST=${HOST:-10.77.0.12}
ssh_() { ssh -i "$KEY" -o UserKnownHostsFile="$KNOWN" -o BatchMode=yes "deploy@$HOST" "$@"; }
ssh_ true >/dev/null || { echo "no lab host answers at $HOST: foobar lab up, then provision it" >&2; exit 2; }

# The hosts' CPU (ms) and the wall time (ms) of N runs of a command, per run.
per_run() {
  local h0 t0 h1 t1
  h0=$(lab_cpu); t0=$(date +%s%N)
  for _ in $(seq "$N"); do "$@" >/dev/null 2>&1; done
  t1=$(date +%s%N); h1=$(lab_cpu)
  echo "$h0 $h1 $t0 $t1 $N" | awk '{printf "hosts %4.0f ms of CPU, %4.0f ms wall", ($2 - $1) * 1000 / $5, ($4 - $3) / 1e6 / $5}'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
conn=$(per_run ssh_ true)
echo "an SSH connection running true:            $conn"
echo "the same running sudo -n true:              $(per_run ssh_ 'sudo -n true')"
echo "the same running sudo -n true twice:        $(per_run ssh_ 'sudo -n true; sudo -n true')"
echo "one connection starting 100 processes:      $(per_run ssh_ 'for i in $(seq 100); do /bin/true; done') (less the connection: 100 processes)"
echo "the motd scripts one SSH session runs (pam_motd): $(ssh_ 'ls /etc/update-motd.d 2>/dev/null | tr "\n" " "')"
TIMEFORMAT='%U %S'
cpu=0
h0=$(lab_cpu); t0=$(date +%s%N)
for _ in $(seq "$N"); do
  c=$({ time node bin/run.js plan -i inventories/lab.yml --json >/dev/null 2>&1; } 2>&1 | awk '{print $1 + $2}')
  cpu=$(echo "$cpu $c" | awk '{print $1 + $2}')
done
t1=$(date +%s%N); h1=$(lab_cpu)
echo "$h0 $h1 $t0 $t1 $N $cpu" | awk '{printf "a plan of the three hosts, nothing to do:   %.0f ms wall; CPU: foobar %.0f ms, the hosts %.0f ms (%.0f ms a host)\n", ($4 - $3) / 1e6 / $5, $6 * 1000 / $5, ($2 - $1) * 1000 / $5, ($2 - $1) * 1000 / $5 / 3}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
