#!/bin/sh
# Installs what foobar's demo and tests need on a fresh Debian 12 machine, once: the lab's tools (debootstrap,
# systemd-nspawn, pebble, apt-cacher-ng), the daemons whose config checkers the tests run (never started here), ssh-audit
# (verify runs it from the control machine) and the npm dependencies. Safe to run again: it only installs what is missing.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="debootstrap systemd-container pebble apt-cacher-ng iproute2 openssh-client curl openssl ca-certificates nginx haproxy mariadb-server iptables ufw openssh-server ssh-audit"

# Prometheus (promtool) and rsyslog (rsyslogd -N1, with the TLS driver) for the monitoring configs' checks.
PACKAGES="$PACKAGES prometheus rsyslog rsyslog-gnutls"

# Alertmanager (amtool check-config) and the blackbox exporter (--config.check) for the alerting configs' checks.
PACKAGES="$PACKAGES prometheus-alertmanager prometheus-blackbox-exporter"

# The default app's database driver, for the unit tests that run the app (test/unit/app-py.test.ts).
PACKAGES="$PACKAGES python3-pymysql"

# keepalived -t for the two load balancers' VRRP config (test/unit/checkers.test.ts); never started here.
PACKAGES="$PACKAGES keepalived"

# Graphviz: `foobar inventory graph --format svg` (test/unit/graph.test.ts renders every example with dot).
PACKAGES="$PACKAGES graphviz"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "foobar setup: missing Debian packages:$missing (install them as root; the lab needs root on Debian)" >&2
  else
    echo "foobar setup: installing$missing"
    # The daemons are installed for their config checkers only: never start them on this machine.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
