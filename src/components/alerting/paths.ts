import type {Host, Inventory} from '../../inventory/index.js'
import {hostPort} from '../../util/address.js'
import {PORTS} from '../ports.js'

/** Where the alerting component puts things on the monitoring host. */
export const ALERTING_PATHS = {
  /** Prometheus's alert rules (rule_files in prometheus.yml). */
  rules: '/etc/prometheus/foobar-alerts.yml',
  alertmanagerConfig: '/etc/prometheus/alertmanager.yml',
  alertmanagerDefaults: '/etc/default/prometheus-alertmanager',
  alertmanagerStorage: '/var/lib/prometheus/alertmanager/',
  /** The SMTP password, read by Alertmanager itself (auth_password_file): never inside a config file. */
  smtpPassword: '/etc/prometheus/alertmanager-smtp-password',
  blackboxConfig: '/etc/prometheus/blackbox.yml',
  blackboxDefaults: '/etc/default/prometheus-blackbox-exporter',
  /** The CA that verifies the site's certificate (the one HAProxy trusts for the backends), for the probes. */
  probeCa: '/etc/foobar/tls/probe-ca.pem',
} as const

/** The alert `foobar monitor test-alert` sends: routed at once, in a group of its own. */
export const TEST_ALERT = 'FoobarTestAlert'

/** Whether the inventory gets alerting: switched on and a monitoring host to run it. */
export const alertingOn = (inv: Inventory): boolean => inv.alerting.enabled && inv.hosts.some((h) => h.roles.includes('monitoring'))

/** Alertmanager's API on the monitoring host (its private address), as foobar and Prometheus reach it. */
export const alertmanagerUrl = (mon: Host) => `http://${hostPort(mon, PORTS.alertmanager)}`

/** The blackbox exporter, on the monitoring host's loopback. */
export const BLACKBOX_ADDRESS = `127.0.0.1:${PORTS.blackbox}`
