#!/usr/bin/env bash
# The CPU time the lab's hosts have used, in seconds: every process inside the systemd-nspawn machines, with the
# children they reaped (a command run over SSH is reaped by the host's sshd, and counted there). Read it before and
# after a run: the difference is what the hosts spent on it, apart from this machine's other tenants (which /proc/stat
# and the load average include). Sourced by the benches (lab_cpu), or run alone.
lab_cpu() {
  local roots
  roots=$(pgrep -x systemd-nspawn | tr '\n' ' ')
  [ -n "$roots" ] || {
    echo 0
    return
  }
  ps -eo pid=,ppid= | awk -v roots="$roots" -v hz="$(getconf CLK_TCK)" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) lab[r[i]] = 1 }
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      total = 0
      for (k = 1; k <= NR; k++) {
        p = pids[k]; q = parent[p]; inside = 0
        # Below a systemd-nspawn process (not the process itself).
        for (d = 0; d < 64 && q != "" && q != 0; d++) { if (q in lab) { inside = 1; break } q = parent[q] }
        if (!inside) continue
        f = "/proc/" p "/stat"
        if ((getline line < f) > 0) {
          sub(/^.*\) /, "", line); split(line, s, " ")
          # After "pid (comm) ": field 12-15 are utime stime cutime cstime.
          total += s[12] + s[13] + s[14] + s[15]
        }
        close(f)
      }
      printf "%.2f\n", total / hz
    }'
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then lab_cpu; fi
