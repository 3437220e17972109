import type {Host, Inventory} from '../../inventory/index.js'
import {hostPort} from '../../util/address.js'
import {PORTS} from '../ports.js'

/*
 * The synthetic user: what the blackbox exporter on the monitoring host probes. Through each load balancer (and
 * the floating address): the site's page (HTTPS, the certificate chain for the site's name and its expiry, HSTS)
 * and the app's health. Not the web servers directly: their HTTPS port is open to the load balancers alone, and
 * stays so. Each backend's TLS is checked from the load balancer's point of view instead: HAProxy's health check
 * verifies its certificate for the site's name every 2 s, and a backend that fails it is DOWN (the BackendDown
 * alert, from HAProxy's metrics).
 */

export interface Probe {
  /** Prometheus job: one per blackbox module. */
  job: 'probe-site'
  module: 'foobar_site'
  /** What the exporter fetches. */
  url: string
  /** The host the probe is about (alerts carry it: a host down silences its probes' alerts). */
  host: string
  /** site or health (the app's, through a load balancer). */
  probe: 'site' | 'health'
}

const url = (h: {address: string; family: 4 | 6}, port: number, path: string) => `https://${hostPort(h, port)}${path}`

/** The app's own health: /readyz when it uses the database (it answers 503 when the database does not), else the LB's check. */
export function healthPath(inv: Inventory, lb: Host): string {
  return inv.mysql?.app ? '/readyz' : lb.lb.healthCheck
}

/** Every probe of the inventory, in a stable order. */
export function probes(inv: Inventory): Probe[] {
  const lbs = inv.hosts.filter((h) => h.roles.includes('lb'))
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
  return out
}
