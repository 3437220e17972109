import type {Host, Inventory} from '../../inventory/index.js'
import {hostCidr} from '../../util/address.js'

export type {ScrapeTarget} from '../../engine/contract.js'
export {hostPort} from '../../util/address.js'

/*
 * Who scrapes. What is scraped comes from the components (`targets` in the contract): Prometheus's config,
 * `monitor status`, verify and the firewall all read that one list, so they cannot disagree.
 */

/** The monitoring server, if the inventory has one (the loader allows at most one). */
export function monitoringHost(inv: Inventory): Host | undefined {
  return inv.hosts.find((h) => h.roles.includes('monitoring'))
}

/** The networks allowed to scrape this host's endpoints: its monitoring sources and the monitoring server. */
export function scrapers(inv: Inventory, host: Host): string[] {
  return [...host.monitoring.sources, ...inv.hosts.filter((h) => h.roles.includes('monitoring') && h !== host).map(hostCidr)]
}
