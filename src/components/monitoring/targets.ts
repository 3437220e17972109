import type {Host, Inventory} from '../../inventory/index.js'
import {memoByObject} from '../../util/memo.js'
import {hostGroup} from '../firewall/rules.js'

export type {ScrapeTarget} from '../../engine/contract.js'
export {hostPort} from '../../util/address.js'

/*
 * Who scrapes. What is scraped comes from the components (`targets` in the contract): Prometheus's config,
 * `monitor status`, verify and the firewall all read that one list, so they cannot disagree.
 */

/** The monitoring server, if the inventory has one (the loader allows at most one). */
export const monitoringHost: (inv: Inventory) => Host | undefined = memoByObject((inv) =>
  inv.hosts.find((h) => h.roles.includes('monitoring')),
)

const monitoringServers = hostGroup((h) => h.roles.includes('monitoring'))

/** The networks allowed to scrape this host's endpoints: its monitoring sources and the monitoring server. */
export function scrapers(inv: Inventory, host: Host): string[] {
  return [...host.monitoring.sources, ...monitoringServers.except(inv, host)]
}
