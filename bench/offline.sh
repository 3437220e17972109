#!/usr/bin/env bash
# Runs another bench script (default: bench/provision.sh) with the lab's apt cache cut off from the Debian mirror:
# every packet apt-cacher-ng's user sends anywhere but the lab bridge and loopback is rejected, and counted. With a
# warm cache (indexes under a week old) the run should pass and the count stay 0: the lab needs no mirror.
# Needs root, iptables and a build. The rule is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
script=${1:-bench/provision.sh}
rule=(OUTPUT -m owner --uid-owner apt-cacher-ng ! -o foobar-br0 ! -o lo -m comment --comment foobar-bench-offline -j REJECT)
trap 'iptables -D "${rule[@]}" 2>/dev/null || true' EXIT
iptables -I "${rule[@]}"
echo "apt cache cut off from the mirror; running $script"
status=0
bash "$script" || status=$?
packets=$(iptables -L OUTPUT -v -n -x | awk '/foobar-bench-offline/ {print $1}')
echo "packets the apt cache tried to send to the mirror: ${packets:-?} (exit status of $script: $status)"
exit "$status"
