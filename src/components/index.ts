import type {Host, Inventory} from '../inventory/index.js'
import {app} from './app/index.js'
import {base} from './base/index.js'
import {type FirewallRule, IPTABLES_V4_FILE, IPTABLES_V6_FILE, firewall, firewallRules} from './firewall/index.js'
import {type HardeningSpec, hardening, hardeningSpec} from './hardening/index.js'
import {haproxy} from './haproxy/index.js'
import {mysql} from './mysql/index.js'
import {exporters, logs, monitoringServer} from './monitoring/index.js'
import {nginx} from './nginx/index.js'
import {type TlsMaterial, tls} from './tls/index.js'
import type {Component, ComponentState} from './types.js'

/**
 * In dependency order: base (apt) first, certificates before the daemons that load them, the app before nginx, the
 * daemons before the exporters that read them.
 */
export const COMPONENTS: Component[] = [base, firewall, tls, app, nginx, haproxy, mysql, exporters, logs, monitoringServer, hardening]

export interface HostDesired extends ComponentState {
  host: Host
  components: string[]
  /** Replication: the plan compares the database's live state with the topology (secrets stay in memory). */
  replication?: {inventory: Inventory; password: string}
  /** The firewall's rules, when the firewall component applies: the plan compares them with the live ones. */
  firewall?: {rules: FirewallRule[]; v4?: string; v6?: string}
  /** Modes, kernel settings and units the hardening compares with the live host. */
  hardening?: HardeningSpec
}

export interface DesiredOptions {
  material?: TlsMaterial
  controlAddress?: string
  /** Only these components (e.g. `foobar firewall apply`). */
  only?: string[]
}

/** Everything a host should have, merged over the components that apply to it (pure). */
export function desiredState(inventory: Inventory, host: Host, options: DesiredOptions = {}): HostDesired {
  const {material, controlAddress, only} = options
  const out: HostDesired = {host, components: [], packages: [], files: [], absent: [], services: []}
  for (const c of COMPONENTS) {
    if (!c.appliesTo(host) || (only && !only.includes(c.name))) continue
    const s = c.desired({inventory, host, material, controlAddress})
    out.components.push(c.name)
    out.packages.push(...s.packages)
    out.files.push(...s.files)
    out.absent.push(...s.absent)
    out.services.push(...s.services)
  }
  if (out.components.includes('firewall')) {
    const content = (path: string) => out.files.find((f) => f.path === path)?.content
    out.firewall = {rules: firewallRules(inventory, host, controlAddress), v4: content(IPTABLES_V4_FILE), v6: content(IPTABLES_V6_FILE)}
  }
  if (out.components.includes('hardening')) out.hardening = hardeningSpec(host)
  out.packages = [...new Set(out.packages)].sort()
  const paths = new Set<string>()
  for (const f of out.files) {
    if (paths.has(f.path)) throw new Error(`${host.name}: two components write ${f.path}`)
    paths.add(f.path)
  }
  return out
}
