#!/bin/sh
# The demo: three real Debian hosts on this machine (the lab), taken from bare to the secured web stack.
set -eu
cd "$(dirname "$0")/.."
foobar() { node bin/run.js "$@"; }

foobar lab up
# The lab's hosts are new: their host keys were recorded by `lab up` in the lab's known_hosts.
foobar provision -i inventories/lab.yml --yes
# ssh-audit from this machine, and Lynis' score of each host: no report is newer than the provision, so verify runs
# Lynis on every host at once and shows it going (test group, seconds) until it is done; --no-lynis skips it.
foobar verify -i inventories/lab.yml
cat <<'MSG'

The stack is up. Reach the site through the load balancer (lb1, 10.77.0.11):
  curl --cacert inventories/.foobar/lab/internal-ca.crt --resolve www.foobar.test:443:10.77.0.11 https://www.foobar.test/
Look around:   node bin/run.js lab status
               node bin/run.js plan -i inventories/lab.yml       (nothing to do: it converged)
Tear it down:  node bin/run.js lab down --purge
MSG
