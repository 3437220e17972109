#!/usr/bin/env bash
# Runs another bench script (default: bench/provision.sh) with the lab's apt cache cut off from the Debian mirror:
# every packet apt-cacher-ng's user sends anywhere but the lab bridge and loopback is rejected, and counted. With a
# warm cache (indexes under a week old) the run should pass and the count stay 0: the lab needs no mirror.
# Needs root, iptables and a build. The rule is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
script=${1:-bench/provision.sh}
chain=foobar-bench-offline
cleanup() {
  iptables -D OUTPUT -m owner --uid-owner apt-cacher-ng -j "$chain" 2>/dev/null || true
  iptables -F "$chain" 2>/dev/null || true
  iptables -X "$chain" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
iptables -N "$chain"
iptables -A "$chain" -o lo -j RETURN
iptables -A "$chain" -o foobar-br0 -j RETURN
iptables -A "$chain" -j REJECT
iptables -I OUTPUT -m owner --uid-owner apt-cacher-ng -j "$chain"
echo "apt cache cut off from the mirror; running $script"
status=0
bash "$script" || status=$?
packets=$(iptables -L "$chain" -v -n -x | awk '$3 == "REJECT" {print $1}')
echo "packets the apt cache tried to send to the mirror: ${packets:-?} (exit status of $script: $status)"
exit "$status"
