import type {Host, Inventory} from '../../inventory/index.js'
import {PORTS} from '../ports.js'

/*
 * What is scraped, derived from the inventory alone (pure): Prometheus's config, `monitor status`, verify and the
 * exporters' own listen addresses all come from this one list, so they cannot disagree.
 */

export type Job = 'node' | 'nginx' | 'haproxy' | 'mysqld'

export interface ScrapeTarget {
  job: Job
  host: string
  /** host:port as Prometheus writes it (IPv6 in brackets). */
  target: string
  /** What a client on the host itself or on the monitoring server fetches. */
  url: string
}

/** `address:port` with IPv6 in brackets, as listen flags and URLs want it. */
export const hostPort = (h: Host, port: number) => (h.family === 6 ? `[${h.address}]:${port}` : `${h.address}:${port}`)

/** The exporters a host runs, by role. HAProxy's endpoint is HAProxy itself (templates/haproxy). */
export function hostJobs(host: Host): Array<{job: Job; port: number}> {
  if (!host.monitoring.enabled) return []
  const jobs: Array<{job: Job; port: number}> = [{job: 'node', port: PORTS.nodeExporter}]
  if (host.roles.includes('web')) jobs.push({job: 'nginx', port: PORTS.nginxExporter})
  if (host.roles.includes('lb')) jobs.push({job: 'haproxy', port: PORTS.haproxyMetrics})
  if (host.db) jobs.push({job: 'mysqld', port: PORTS.mysqldExporter})
  return jobs
}

export function hostTargets(host: Host): ScrapeTarget[] {
  return hostJobs(host).map(({job, port}) => {
    const target = hostPort(host, port)
    return {job, host: host.name, target, url: `http://${target}/metrics`}
  })
}

export function scrapeTargets(inv: Inventory): ScrapeTarget[] {
  return inv.hosts.flatMap(hostTargets)
}

/** The monitoring server, if the inventory has one (the loader allows at most one). */
export function monitoringHost(inv: Inventory): Host | undefined {
  return inv.hosts.find((h) => h.roles.includes('monitoring'))
}
