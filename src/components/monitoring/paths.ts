import {PORTS} from '../ports.js'

/** Where the monitoring component puts things on hosts. */
export const MONITORING_PATHS = {
  nodeDefaults: '/etc/default/prometheus-node-exporter',
  nginxDefaults: '/etc/default/prometheus-nginx-exporter',
  mysqldDefaults: '/etc/default/prometheus-mysqld-exporter',
  mysqldDropIn: '/etc/systemd/system/prometheus-mysqld-exporter.service.d/foobar.conf',
  mysqldUserSql: '/etc/foobar/monitoring/mysqld-exporter-user.sql',
  prometheusConfig: '/etc/prometheus/prometheus.yml',
  prometheusDefaults: '/etc/default/prometheus',
  /** Before Debian's haproxy drop-in (49-haproxy.conf), which stops HAProxy's messages after writing them. */
  forward: '/etc/rsyslog.d/30-foobar-forward.conf',
  collector: '/etc/rsyslog.d/30-foobar-collector.conf',
  logService: '/etc/rsyslog.d/31-foobar-log-service.conf',
  logShip: '/usr/local/lib/foobar/log-ship',
  logServiceCurl: '/etc/foobar/monitoring/log-service.curl',
  logCa: '/etc/foobar/tls/log-ca.pem',
  logCert: '/etc/foobar/tls/log.crt',
  logKey: '/etc/foobar/tls/log.key',
  /** Where the collector writes what it receives: one directory per sending host. */
  remoteLogs: '/var/log/remote',
} as const

/** nginx's counters, on localhost only (templates/nginx/site.conf.hbs). */
export const NGINX_STUB_STATUS = `http://127.0.0.1:${PORTS.nginxStatus}/stub_status`
