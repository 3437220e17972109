import type {Host, Inventory} from '../inventory/index.js'
import {app} from './app/index.js'
import {base} from './base/index.js'
import {firewall} from './firewall/index.js'
import {haproxy} from './haproxy/index.js'
import {mysql} from './mysql/index.js'
import {nginx} from './nginx/index.js'
import {type TlsMaterial, tls} from './tls/index.js'
import type {Component, ComponentState} from './types.js'

/** In dependency order: base (apt) first, certificates before the daemons that load them, the app before nginx. */
export const COMPONENTS: Component[] = [base, firewall, tls, app, nginx, haproxy, mysql]

export interface HostDesired extends ComponentState {
  host: Host
  components: string[]
}

/** Everything a host should have, merged over the components that apply to it (pure). */
export function desiredState(inventory: Inventory, host: Host, material?: TlsMaterial): HostDesired {
  const out: HostDesired = {host, components: [], packages: [], files: [], absent: [], services: []}
  for (const c of COMPONENTS) {
    if (!c.appliesTo(host)) continue
    const s = c.desired({inventory, host, material})
    out.components.push(c.name)
    out.packages.push(...s.packages)
    out.files.push(...s.files)
    out.absent.push(...s.absent)
    out.services.push(...s.services)
  }
  out.packages = [...new Set(out.packages)].sort()
  const paths = new Set<string>()
  for (const f of out.files) {
    if (paths.has(f.path)) throw new Error(`${host.name}: two components write ${f.path}`)
    paths.add(f.path)
  }
  return out
}
