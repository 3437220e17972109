#!/usr/bin/env bash
# First converge of the lab stack from bare hosts, full and lean (monitoring and hardening off, as issue 20 compares
# with Ansible), with the apt share (each host's apt-get install, from its own /var/log/apt/history.log), then the
# no-op provision and plan. Needs root and a build (`npm run build`); brings up its own lab and leaves none running.
# The lab's apt cache (apt-cacher-ng) is warm after the first lab run on a machine: run once before to measure warm.
set -euo pipefail
cd "$(dirname "$0")/.."

foobar() { node bin/run.js "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.1f", $1 - $2}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
KEY=/var/lib/foobar-lab/ssh/id_ed25519
KNOWN=/var/lib/foobar-lab/known_hosts
# The longest apt-get install on the lab hosts, in seconds (Start-Date/End-Date of its last transaction).
apt_share() {
  local max=0 s
  for a in 10.77.0.11 10.77.0.12 10.77.0.13; do
    s=$(ssh -i "$KEY" -o UserKnownHostsFile="$KNOWN" -o BatchMode=yes "deploy@$a" \
      "grep -E '^(Start|End)-Date' /var/log/apt/history.log | tail -2 | sed 's/^[A-Za-z-]*: //' | xargs -I{} date -d {} +%s | paste -sd' '" |
      awk '{print $2 - $1}')
    max=$(awk -v a="$max" -v b="${s:-0}" 'BEGIN{print (b > a) ? b : a}')
  done
  echo "$max"
}
LEAN=$(mktemp -d)/lab-lean.yml
trap 'rm -rf "$(dirname "$LEAN")"; foobar lab down --purge >/dev/null 2>&1 || true' EXIT
awk '/^monitoring:/{print; getline; sub(/enabled: true/, "enabled: false")} {print}' inventories/lab.yml > "$LEAN"
cat >> "$LEAN" <<'YAML'
hardening:
  skip: {ssh: bench, policy: bench, audit_tools: bench, usb: bench, unattended_upgrades: bench, fail2ban: bench, sysctl: bench, permissions: bench, services: bench}
YAML
# The lab's TLS state stays the lab inventory's (no new CA for the copy).
sed -i "s|    type: self-signed|    type: self-signed\n    state_dir: $PWD/inventories/.foobar/lab|" "$LEAN"

for variant in full lean; do
  inv=inventories/lab.yml
  [ "$variant" = lean ] && inv=$LEAN
  foobar lab down --purge >/dev/null
  foobar lab up >/dev/null
  l=$(load); t=$(now)
  foobar provision -i "$inv" --yes --json >/dev/null
  total=$(since "$t")
  printf 'first converge, %-4s (bare hosts):   %6s s, apt-get install (longest host) %s s   (load before: %s, after: %s)\n' \
    "$variant" "$total" "$(apt_share)" "$l" "$(load)"
done
for i in 1 2 3; do
  t=$(now); foobar provision -i "$LEAN" --yes --json >/dev/null 2>&1 || true
  echo "no-op provision #$i (lean inventory, whole CLI run): $(since "$t") s   (load $(load))"
done
t=$(now); foobar plan -i "$LEAN" --detailed-exitcode --json >/dev/null || true
echo "plan with nothing to do (lean):                   $(since "$t") s   (load $(load))"
