import {upgradeWindows} from './upgrade-windows.js'
import {type FieldPath, type InventoryProblem, formatPath} from './errors.js'
import {isAnyAddress} from './primitives.js'
import {type Host, type Inventory, type PortRule, sshPort} from './resolved.js'
import type {InventoryFile} from './schema.js'

/*
 * The firewall policy cannot be widened by accident (checked when the inventory is loaded, so `inventory check`
 * reports it and nothing is planned):
 * - an `extra_ports` entry on a port that foobar's own rules govern on the host (SSH, the database, exporters, ...)
 *   is an error unless it says `override: <why>`;
 * - any address (0.0.0.0/0, ::/0) as a source of SSH, the database or the exporters is an error unless
 *   `firewall.allow_any_source` names that service with the reason.
 * What is let through on purpose comes back as warnings, which plan, provision and the firewall commands show.
 */

/** Where a governed port's sources come from, and what may be opened to any address only with an acknowledgement. */
export type GovernedService = 'ssh' | 'database' | 'exporters' | 'web' | 'monitoring' | 'vrrp' | 'upgrades'

export interface GovernedPort {
  /** Absent for a protocol without ports (vrrp). */
  port?: number
  proto: 'tcp' | 'udp' | 'vrrp'
  service: GovernedService
  /** For messages: "SSH (from firewall.admin_cidrs)". */
  what: string
}

/*
 * The fixed ports of foobar's components (src/components/ports.ts; the inventory cannot import components). A unit
 * test (inventory-edges.test.ts) checks that every port the stack opens on a host is in governedPorts.
 */
const FIXED = {
  http: 80,
  https: 443,
  haproxyMetrics: 8405,
  nodeExporter: 9100,
  nginxExporter: 9113,
  mysqldExporter: 9104,
  prometheus: 9090,
  alertmanager: 9093,
  syslog: 6514,
  upgradeStatus: 9731,
}

/** The ports foobar's own rules open on this host, with whom they are for. A superset is harmless: an override is asked for. */
export function governedPorts(inv: Inventory, host: Host): GovernedPort[] {
  const out: GovernedPort[] = []
  const add = (port: number, service: GovernedService, what: string) => out.push({port, proto: 'tcp', service, what})
  const has = (r: Host['roles'][number]) => host.roles.includes(r)
  add(sshPort(host), 'ssh', 'SSH (from firewall.admin_cidrs)')
  if (has('lb')) {
    add(FIXED.http, 'web', 'http on the load balancer')
    add(FIXED.https, 'web', 'https on the load balancer')
    // keepalived's VRRP (IP protocol 112, no port), only between the load balancers sharing lb.vip.
    if (host.lb.vip !== undefined) out.push({proto: 'vrrp', service: 'vrrp', what: 'VRRP (from the other load balancers)'})
  }
  if (has('web')) {
    add(FIXED.http, 'web', 'http on the web server (from the load balancer)')
    add(host.lb.backendPort, 'web', 'https on the web server (from the load balancer)')
  }
  if (host.db && inv.mysql) {
    add(inv.mysql.port, 'database', 'the database (from web and database hosts)')
    if (inv.mysql.endpoint) add(inv.mysql.endpoint.checkPort, 'database', 'the database writer check (from web servers)')
  }
  if (has('monitoring')) {
    add(FIXED.prometheus, 'monitoring', 'Prometheus (from firewall.admin_cidrs)')
    if (inv.alerting.enabled) add(FIXED.alertmanager, 'monitoring', 'Alertmanager (from firewall.admin_cidrs)')
    add(FIXED.syslog, 'monitoring', 'the log collector (from every host)')
  }
  if (upgradeWindows(inv).get(host.name)?.peers.length) {
    add(FIXED.upgradeStatus, 'upgrades', 'the upgrade status (from the hosts sharing a role)')
  }
  if (host.monitoring.enabled) {
    const exporter = (port: number, name: string) => add(port, 'exporters', `the ${name} (from monitoring.sources)`)
    exporter(FIXED.nodeExporter, 'node exporter')
    if (has('web')) exporter(FIXED.nginxExporter, 'nginx exporter')
    if (has('web') && inv.mysql?.endpoint) exporter(inv.mysql.endpoint.metricsPort, 'database endpoint metrics')
    if (has('lb')) exporter(FIXED.haproxyMetrics, 'haproxy metrics')
    if (host.db) exporter(FIXED.mysqldExporter, 'mysqld exporter')
  }
  return out
}

const SERVICE_NAME: Record<'ssh' | 'database' | 'exporters', string> = {ssh: 'SSH', database: 'the database', exporters: 'the exporters'}

/** A rule's sources are any address: none listed (anywhere) or a /0. */
const isAnywhere = (rule: Pick<PortRule, 'from'>) => rule.from.length === 0 || rule.from.some(isAnyAddress)

export function firewallPolicy(data: InventoryFile, inv: Inventory): {problems: InventoryProblem[]; warnings: string[]} {
  // Problems and warnings about one place in the file, for several hosts: one message listing the hosts.
  const problems = new Grouped<FieldPath>()
  const warnings = new Grouped<undefined>()
  inv.hosts.forEach((host, i) => {
    const origin = (path: string[]) => originOf(data, i, path)
    const governed = governedPorts(inv, host)
    const ack = host.firewall.allowAnySource
    const ackPath = (service: string) => [...origin(['firewall', 'allow_any_source', service]), 'firewall', 'allow_any_source']
    const fw = formatPath

    for (const role of host.roles) {
      const rules = host.firewall.extraPorts[role] ?? []
      const base = [...origin(['firewall', 'extra_ports', role]), 'firewall', 'extra_ports', role]
      rules.forEach((rule, j) => {
        const path = [...base, j]
        const g = governed.find((x) => x.port === rule.port && x.proto === rule.proto)
        if (!g) return
        const port = `port ${rule.port}/${rule.proto}`
        if (rule.override === undefined) {
          problems.add(
            path,
            `${port} is ${g.what}`,
            (hosts) =>
              `${port} is ${g.what} on ${hosts}: an extra port there widens foobar's own rule. Remove it, or mark it override: "<why>" if widening it is deliberate`,
            host.name,
          )
          return
        }
        const anywhere = isAnywhere(rule)
        if (anywhere && (g.service === 'ssh' || g.service === 'database' || g.service === 'exporters') && !ack[g.service]) {
          problems.add(
            path,
            `any ${g.service} ${rule.port}`,
            (hosts) =>
              `opens ${SERVICE_NAME[g.service as 'ssh']} on ${hosts} to any address: acknowledge it with firewall.allow_any_source: {${g.service}: "<why>"}, or list the networks in from`,
            host.name,
          )
          return
        }
        warnings.add(
          undefined,
          `${fw(path)} ${port} ${rule.override}`,
          (hosts) =>
            `firewall: ${fw(path)} widens ${port} (${g.what}) on ${hosts}${anywhere ? ' to any address' : ''}: override "${rule.override}"`,
          host.name,
        )
      })
    }

    const anySources = (cidrs: string[]) => cidrs.filter(isAnyAddress)
    const checkAny = (service: 'ssh' | 'exporters', field: string[], cidrs: string[], what: string) => {
      const any = anySources(cidrs)
      if (any.length === 0) return
      const path = [...origin(field), ...field]
      const first = cidrs.findIndex(isAnyAddress)
      if (!ack[service]) {
        problems.add(
          [...path, first],
          `any ${service}`,
          (hosts) =>
            `${any.join(', ')} opens ${what} on ${hosts} to any address: acknowledge it with firewall.allow_any_source: {${service}: "<why>"}, or list your networks`,
          host.name,
        )
      } else {
        warnings.add(
          undefined,
          `any ${service} ${fw(path)} ${ack[service]}`,
          (hosts) =>
            `firewall: ${what} on ${hosts} is open to any address (${fw(path)}: ${any.join(', ')}), acknowledged in ${fw(ackPath(service))}: "${ack[service]}"`,
          host.name,
        )
      }
    }
    checkAny('ssh', ['firewall', 'admin_cidrs'], host.firewall.adminCidrs, 'SSH')
    if (host.monitoring.enabled) checkAny('exporters', ['monitoring', 'sources'], host.monitoring.sources, 'the exporters')
  })
  return {
    problems: problems.list().map(({key, message}) => ({path: key, message})),
    warnings: warnings.list().map(({message}) => message),
  }
}

/**
 * The layer a host's setting comes from, as a path prefix: the host (`hosts[i]`), the last of its roles that sets
 * it (`roles.<role>`) or the top level (`[]`); the defaults set none of the fields checked here.
 */
function originOf(data: InventoryFile, index: number, path: string[]): FieldPath {
  const host = data.hosts[index]
  const isSet = (layer: unknown) => getIn(layer, path) !== undefined
  if (isSet(host)) return ['hosts', index]
  const role = [...(host?.roles ?? [])].reverse().find((r) => isSet(data.roles?.[r]))
  if (role) return ['roles', role]
  return []
}

function getIn(value: unknown, path: string[]): unknown {
  let v = value
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined
    v = (v as Record<string, unknown>)[p]
  }
  return v
}

class Grouped<K> {
  private readonly groups = new Map<string, {key: K; hosts: string[]; make: (hosts: string) => string}>()

  add(key: K, id: string, make: (hosts: string) => string, host: string): void {
    const k = `${JSON.stringify(key)}|${id}`
    const g = this.groups.get(k)
    if (g) g.hosts.push(host)
    else this.groups.set(k, {key, hosts: [host], make})
  }

  list(): Array<{key: K; message: string}> {
    return [...this.groups.values()].map((g) => ({key: g.key, message: g.make(g.hosts.join(', '))}))
  }
}
