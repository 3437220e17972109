#!/usr/bin/env bash
# verify timings on the lab stack (lb1, web1, web2), with the load average: right after a first provision (the hosts'
# own Lynis runs under way: what `npm run demo` sees), warm (each host's latest Lynis report read), cold (`--lynis-now`:
# Lynis run on every host at once) and without Lynis. Needs root and a build (`npm run build`). Brings up its own lab
# and leaves none running.
set -euo pipefail
cd "$(dirname "$0")/.."

foobar() { node bin/run.js "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.1f", $1 - $2}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# One line from verify's --json: failed checks, and what each host's Lynis check said.
summary() {
  node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{let r;try{r=JSON.parse(s).result}catch{}r=r||{checks:[]};
    const l=r.checks.filter(c=>c.check==='lynis').map(c=>c.host+': '+c.detail.replace(/^hardening index /,''));
    console.log('  ' + (r.failed||0) + ' failed' + (l.length ? '; lynis ' + l.join('; ') : ''))})"
}
timed() {
  local label=$1; shift
  local t l out
  l=$(load); t=$(now)
  out=$(foobar verify -i inventories/lab.yml --json "$@") || true
  printf '%-58s %7s s   (load before: %s, after: %s)\n' "$label" "$(since "$t")" "$l" "$(load)"
  echo "$out" | summary
}

trap 'foobar lab down --purge >/dev/null 2>&1 || true' EXIT
foobar lab down --purge >/dev/null
foobar lab up >/dev/null

t=$(now); foobar provision -i inventories/lab.yml --yes --json >/dev/null
echo "first provision (bare hosts, packages through the apt proxy): $(since "$t") s"
timed 'verify right after it (joins the hosts'"'"' own Lynis runs):'
timed 'verify again (warm: each host'"'"'s report read):'
timed 'verify --lynis-now (cold: Lynis on every host at once):' --lynis-now
timed 'verify --no-lynis:' --no-lynis
