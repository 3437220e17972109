import type {Host, Inventory} from '../../inventory/index.js'
import {hostPort} from '../../util/address.js'
import {PORTS} from '../ports.js'

/*
 * The synthetic user: what the blackbox exporter on the monitoring host probes. Through each load balancer (and
 * the floating address): the site's page (HTTPS, the certificate chain for the site's name and its expiry, HSTS)
 * and the app's health. Each web server directly on its backend HTTPS port, which the firewall opens to the
 * monitoring host for that (re-encryption on: with plain HTTP to the backends there is no backend TLS to probe, and
 * port 80 stays the load balancers' alone).
 */

export interface Probe {
  /** Prometheus job: one per blackbox module. */
  job: 'probe-site' | 'probe-backend'
  module: 'foobar_site' | 'foobar_backend'
  /** What the exporter fetches. */
  url: string
  /** The host the probe is about (alerts carry it: a host down silences its probes' alerts). */
  host: string
  /** site, health (through a load balancer) or backend (a web server directly). */
  probe: 'site' | 'health' | 'backend'
}

const url = (h: {address: string; family: 4 | 6}, port: number, path: string) => `https://${hostPort(h, port)}${path}`

/** The app's own health: /readyz when it uses the database (it answers 503 when the database does not), else the LB's check. */
export function healthPath(inv: Inventory, lb: Host): string {
  return inv.mysql?.app ? '/readyz' : lb.lb.healthCheck
}

/** Every probe of the inventory, in a stable order. */
export function probes(inv: Inventory): Probe[] {
  const lbs = inv.hosts.filter((h) => h.roles.includes('lb'))
  const webs = inv.hosts.filter((h) => h.roles.includes('web'))
  const out: Probe[] = []
  for (const lb of lbs) {
    out.push({job: 'probe-site', module: 'foobar_site', url: url(lb, PORTS.https, '/'), host: lb.name, probe: 'site'})
    out.push({job: 'probe-site', module: 'foobar_site', url: url(lb, PORTS.https, healthPath(inv, lb)), host: lb.name, probe: 'health'})
  }
  const vip = lbs[0]?.lb.vip
  if (vip !== undefined) {
    const v = {address: vip, family: (vip.includes(':') ? 6 : 4) as 4 | 6}
    out.push({job: 'probe-site', module: 'foobar_site', url: url(v, PORTS.https, '/'), host: 'vip', probe: 'site'})
  }
  if (backendProbes(inv))
    for (const w of webs)
      out.push({job: 'probe-backend', module: 'foobar_backend', url: url(w, w.lb.backendPort, w.lb.healthCheck), host: w.name, probe: 'backend'})
  return out
}

/** The web servers are probed directly only when every load balancer re-encrypts to them (their HTTPS port). */
export const backendProbes = (inv: Inventory): boolean => {
  const lbs = inv.hosts.filter((h) => h.roles.includes('lb'))
  return lbs.length > 0 && lbs.every((l) => l.lb.reencrypt)
}
