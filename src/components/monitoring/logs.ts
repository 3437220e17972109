import type {Host} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'
import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {UserError} from '../../util/errors.js'
import {PORTS} from '../ports.js'
import {type Component, type DesiredFile, type TlsMaterial, emptyState, file, leafKey} from '../../engine/contract.js'
import {hostGroup} from '../firewall/rules.js'
import {logsChecks} from './checks.js'
import {MONITORING_PATHS as P} from './paths.js'
import {monitoringHost} from './targets.js'

const RSYSLOG = 'rsyslog'
/** rsyslog checks the whole configuration, so each drop-in is checked in place (the previous one restored on failure). */
const rsyslogCheck = {mode: 'config' as const, command: 'rsyslogd -N1'}

/** The host's certificate for log transport, and the internal CA that verifies the other end. */
function tlsFiles(host: Host, material: TlsMaterial | undefined): DesiredFile[] {
  const leaf = material?.leaves[leafKey('log', host.name)]
  if (!material || !leaf) return []
  return [
    file(P.logCa, material.internalCa, {notify: [RSYSLOG]}),
    file(P.logCert, leaf.cert, {notify: [RSYSLOG]}),
    file(P.logKey, leaf.key, {mode: 0o600, secret: true, notify: [RSYSLOG]}),
  ]
}

const tlsView = {caFile: P.logCa, certFile: P.logCert, keyFile: P.logKey}

const everyHost = hostGroup(() => true)

/**
 * Logs with rsyslog (Debian's, with rsyslog-gnutls): the monitoring host collects the other hosts' logs over TLS
 * (6514, mutual certificates from foobar's internal CA); every other host forwards its system logs, nginx's files
 * and HAProxy's messages there. Optionally every host also ships its logs to a hosted log service.
 */
export const logs: Component = {
  name: 'logs',
  after: ['base'],
  appliesTo: () => true,
  // Every host's certificate for log transport, when there is a collector.
  certificates: ({inventory, host}) => (monitoringHost(inventory) ? [{name: 'log', sans: [`DNS:${host.name}`, `IP:${host.address}`]}] : []),
  ports: ({inventory, host}) =>
    monitoringHost(inventory) === host
      ? [
          {
            port: PORTS.syslogTls,
            proto: 'tcp',
            from: everyHost.except(inventory, host),
            comment: 'logs from every host',
          },
        ]
      : [],
  checks: (ctx) => logsChecks(ctx),
  // The hosted log service's URL (it carries the service's token).
  secrets: ({host}) => (host.monitoring.logService ? [{field: 'monitoring.log_service.url', ref: host.monitoring.logService.url}] : []),
  desired: ({inventory, host, material}) => {
    const state = emptyState()
    const collector = monitoringHost(inventory)
    if (collector === host) {
      state.files.push(
        ...tlsFiles(host, material),
        file(
          P.collector,
          renderTemplate('monitoring/rsyslog-collector.conf', {
            ...tlsView,
            peers: inventory.hosts.filter((h) => h !== host).map((h) => h.name),
            dir: P.remoteLogs,
            address: host.address,
            port: PORTS.syslogTls,
          }),
          {notify: [RSYSLOG], validate: rsyslogCheck},
        ),
      )
    } else if (collector && host.monitoring.enabled) {
      const view = {
        ...tlsView,
        collector: collector.name,
        address: collector.address,
        port: PORTS.syslogTls,
        web: host.roles.includes('web'),
        lb: host.roles.includes('lb'),
      }
      state.files.push(
        ...tlsFiles(host, material),
        file(P.forward, renderTemplate('monitoring/rsyslog-forward.conf', view), {notify: [RSYSLOG], validate: rsyslogCheck}),
      )
    }
    if (host.monitoring.logService) state.files.push(...logServiceFiles(host, material ? 'read' : 'placeholder'))
    if (state.files.length === 0) return state
    state.packages.push(RSYSLOG, 'rsyslog-gnutls', 'curl')
    const listening = collector === host ? `ss -Hltn ${shq(`sport = :${PORTS.syslogTls}`)} | grep -q .` : undefined
    state.services.push({name: RSYSLOG, onChange: 'restart', health: listening})
    return state
  },
}

const SHIP = {batch: 500, every: 5}
/** Like the inventory's URLs, plus = and + (hosted services' tokens are base64), https only. */
const SERVICE_URL = /^https:\/\/[A-Za-z0-9.:[\]-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~/%=+-]*)?$/

/**
 * The hosted log service (e.g. a Sumo Logic HTTP source): rsyslog's omprog feeds a small batching script that
 * POSTs with curl (bookworm's rsyslog has no omhttp). The URL is a credential: read at run time, kept in a root-only
 * curl config, never on a command line or in a diff.
 */
function logServiceFiles(host: Host, mode: 'read' | 'placeholder'): DesiredFile[] {
  const url =
    mode === 'read'
      ? readSecret(host.monitoring.logService!.url, 'monitoring.log_service.url')
      : 'https://log-service.invalid/secret-not-read-for-render'
  // The secret is checked like any URL of the inventory before it reaches a config file (the value is not shown).
  if (!SERVICE_URL.test(url))
    throw new UserError('monitoring.log_service.url: the secret must be an https:// URL without spaces, quotes or query string')
  return [
    file(P.logServiceCurl, renderTemplate('monitoring/log-service.curl', {url}), {mode: 0o600, secret: true, notify: [RSYSLOG]}),
    file(P.logShip, renderTemplate('monitoring/log-ship', SHIP), {
      mode: 0o755,
      notify: [RSYSLOG],
      validate: {mode: 'candidate', command: 'bash -n {}'},
    }),
    file(P.logService, renderTemplate('monitoring/rsyslog-log-service.conf', {ship: P.logShip, curlConfig: P.logServiceCurl}), {
      notify: [RSYSLOG],
      validate: rsyslogCheck,
    }),
  ]
}
