import {UserError} from '../../util/errors.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'
import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {PORTS} from '../ports.js'
import {type Component, type ComponentState, type DesiredFile, type ServiceSpec, file} from '../../engine/contract.js'
import {metricsChecks} from './checks.js'
import {MONITORING_PATHS as P, NGINX_STUB_STATUS} from './paths.js'
import {hostPort} from '../../util/address.js'
import {scrapers} from './targets.js'

/** The exporter's database account: the OS user the Debian package runs it as, so unix_socket auth can map it. */
export const EXPORTER_DB_USER = 'prometheus'
/** Goes into a DSN inside a systemd EnvironmentFile and an SQL literal: no quoting characters, no '/' or '#'. */
const PASSWORD = /^[A-Za-z0-9._~+=,:!*@-]{12,128}$/

/** Healthy = answers with metrics on the private address; `up` names a metric that must read 1 (the daemon it watches). */
function exporter(name: string, h: Host, port: number, up?: string): ServiceSpec {
  const fetch = `curl -fsS ${shq(`http://${hostPort(h, port)}/metrics`)}`
  return {name, onChange: 'restart', health: up ? `${fetch} | grep -q ${shq(`^${up} 1`)}` : `${fetch} -o /dev/null`}
}

/**
 * Debian's node exporter on every host with monitoring enabled, listening on the host's private address only; the
 * firewall admits only the monitoring sources to every metrics endpoint of the host (each component declares its
 * own: nginx's, HAProxy's, mysqld's exporters live with what they watch).
 */
export const exporters: Component = {
  name: 'exporters',
  after: ['base'],
  appliesTo: (host) => host.monitoring.enabled,
  targets: () => [{job: 'node', what: 'node exporter', port: PORTS.nodeExporter}],
  // The endpoints every component of the host exposes, open to the scrapers only.
  ports: ({inventory, host, targets}) => {
    const from = scrapers(inventory, host)
    return from.length ? targets.map((t) => ({port: t.port, proto: 'tcp' as const, from, comment: `${t.what} from monitoring`})) : []
  },
  desired: ({host}) => ({
    packages: ['prometheus-node-exporter'],
    files: [
      file(P.nodeDefaults, renderTemplate('monitoring/node-exporter.default', {listen: hostPort(host, PORTS.nodeExporter)}), {
        notify: ['prometheus-node-exporter'],
      }),
    ],
    absent: [],
    services: [exporter('prometheus-node-exporter', host, PORTS.nodeExporter)],
  }),
  checks: (ctx) => metricsChecks(ctx),
}

/** nginx's exporter (from nginx's own stub_status): installed by the nginx component where monitoring is on. */
export function nginxExporter(host: Host): ComponentState {
  return {
    packages: ['prometheus-nginx-exporter'],
    files: [
      file(
        P.nginxDefaults,
        renderTemplate('monitoring/nginx-exporter.default', {listen: hostPort(host, PORTS.nginxExporter), scrapeUri: NGINX_STUB_STATUS}),
        {
          notify: ['prometheus-nginx-exporter'],
        },
      ),
    ],
    absent: [],
    services: [exporter('prometheus-nginx-exporter', host, PORTS.nginxExporter, 'nginx_up')],
  }
}

/** The exporter's password, or undefined for MariaDB's unix_socket authentication (no secret at all). */
export function monitorPassword(inv: Inventory, mode: 'read' | 'placeholder'): string | undefined {
  const ref = inv.mysql?.monitorPassword
  if (!ref) {
    if (inv.mysql?.engine === 'mysql')
      throw new UserError(
        'mysql.monitor_password is needed for the mysqld exporter with engine mysql (MariaDB can do without: unix_socket)',
      )
    return undefined
  }
  if (mode === 'placeholder') return 'secret-not-read-for-render'
  const value = readSecret(ref, 'mysql.monitor_password')
  if (!PASSWORD.test(value))
    throw new UserError(
      'mysql.monitor_password: must be 12-128 characters of letters, digits and . _ ~ + = , : ! * @ - (the secret itself is not shown)',
    )
  return value
}

/**
 * mysqld exporter with its own least-privilege account: PROCESS and REPLICATION CLIENT (plus SLAVE MONITOR, which
 * MariaDB 10.5+ needs for SHOW SLAVE STATUS) and SELECT on performance_schema only, at most 3 connections. The
 * account is (re)created by the exporter unit itself before it starts, as root over the socket, and kept out of the
 * binlog so every database host has its own and replication never sees it.
 */
export function mysqldExporter(inv: Inventory, host: Host, service: string, mode: 'read' | 'placeholder'): ComponentState {
  const password = monitorPassword(inv, mode)
  const mariadb = inv.mysql?.engine !== 'mysql'
  const view = {user: EXPORTER_DB_USER, password: password ?? '', hasPassword: password !== undefined, mariadb}
  const svc = 'prometheus-mysqld-exporter'
  const files: DesiredFile[] = [
    file(P.mysqldDefaults, renderTemplate('monitoring/mysqld-exporter.default', {...view, listen: hostPort(host, PORTS.mysqldExporter)}), {
      // systemd reads the EnvironmentFile as root: the exporter itself never needs to read the password file.
      mode: 0o600,
      secret: password !== undefined,
      notify: [svc],
    }),
    file(P.mysqldUserSql, renderTemplate('monitoring/mysqld-exporter-user.sql', view), {
      mode: 0o600,
      secret: password !== undefined,
      notify: [svc],
    }),
    file(P.mysqldDropIn, renderTemplate('monitoring/mysqld-exporter.dropin', {db: service, sql: P.mysqldUserSql}), {notify: [svc]}),
  ]
  return {packages: ['prometheus-mysqld-exporter'], files, absent: [], services: [exporter(svc, host, PORTS.mysqldExporter, 'mysql_up')]}
}
