import {isIP} from 'node:net'
import type {Host, Inventory, Role} from '../../inventory/index.js'
import {PORTS} from '../ports.js'

/** One allow rule. Everything not allowed is dropped (default deny incoming). */
export interface FirewallRule {
  port: number
  proto: 'tcp' | 'udp'
  /** Source networks; empty = anywhere. */
  from: string[]
  comment: string
}

const hostCidr = (h: Host) => `${h.address}/${h.family === 4 ? 32 : 128}`
const withRole = (inv: Inventory, role: Role) => inv.hosts.filter((h) => h.roles.includes(role))

/**
 * The rules a host needs, derived from its roles (pure). Sorted for stable output; the same list feeds ufw,
 * iptables and the port-matrix checks.
 */
export function firewallRules(inv: Inventory, host: Host): FirewallRule[] {
  const rules: FirewallRule[] = []
  const add = (port: number, from: string[], comment: string, proto: 'tcp' | 'udp' = 'tcp') =>
    rules.push({port, proto, from: [...new Set(from)].sort(), comment})

  add(host.ssh.port, host.firewall.adminCidrs, 'ssh from admin networks')
  if (host.roles.includes('lb')) {
    add(PORTS.http, [], 'http (redirect and ACME)')
    add(PORTS.https, [], 'https')
  }
  if (host.roles.includes('web')) {
    const lbs = withRole(inv, 'lb').map(hostCidr)
    // With no load balancer the web servers face clients directly.
    add(PORTS.http, lbs, lbs.length ? 'http from the load balancer (ACME)' : 'http')
    add(host.lb.backendPort, lbs, lbs.length ? 'https from the load balancer' : 'https')
  }
  if (host.roles.includes('db') && inv.mysql) {
    const peers = inv.hosts.filter((h) => h !== host && (h.roles.includes('web') || h.roles.includes('db'))).map(hostCidr)
    if (peers.length) add(inv.mysql.port, peers, 'mysql from web and database hosts')
  }
  if (host.monitoring.enabled) {
    const scrapers = [...host.monitoring.sources, ...withRole(inv, 'monitoring').filter((h) => h !== host).map(hostCidr)]
    if (scrapers.length) {
      add(PORTS.nodeExporter, scrapers, 'node exporter from monitoring')
      if (host.roles.includes('web')) add(PORTS.nginxExporter, scrapers, 'nginx exporter from monitoring')
      if (host.roles.includes('lb')) add(PORTS.haproxyMetrics, scrapers, 'haproxy metrics from monitoring')
      if (host.roles.includes('db')) add(PORTS.mysqldExporter, scrapers, 'mysqld exporter from monitoring')
    }
  }
  if (host.roles.includes('monitoring')) {
    add(PORTS.prometheus, host.firewall.adminCidrs, 'prometheus from admin networks')
    add(PORTS.syslogTls, inv.hosts.filter((h) => h !== host).map(hostCidr), 'logs from every host')
  }
  for (const role of host.roles) {
    for (const extra of host.firewall.extraPorts[role] ?? []) add(extra.port, extra.from, extra.comment ?? `extra ${role} port`, extra.proto)
  }
  return mergeRules(rules)
}

/** Same port and protocol: one rule with the union of sources (anywhere wins). */
function mergeRules(rules: FirewallRule[]): FirewallRule[] {
  const byKey = new Map<string, FirewallRule>()
  for (const r of rules) {
    const key = `${r.port}/${r.proto}`
    const prev = byKey.get(key)
    if (!prev) byKey.set(key, r)
    else if (prev.from.length === 0 || r.from.length === 0) prev.from = []
    else prev.from = [...new Set([...prev.from, ...r.from])].sort()
  }
  return [...byKey.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto))
}

export const familyOf = (cidr: string): 4 | 6 => (isIP(cidr.split('/')[0]!) === 6 ? 6 : 4)

/** The rule's sources for one address family; `undefined` when the rule does not apply to that family. */
export function sourcesFor(rule: FirewallRule, family: 4 | 6): string[] | undefined {
  if (rule.from.length === 0) return []
  const mine = rule.from.filter((c) => familyOf(c) === family)
  return mine.length ? mine : undefined
}
