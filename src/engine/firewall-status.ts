import {desiredState} from '../components/index.js'
import {compareFirewall, type FirewallDrift, parseFirewallFacts} from '../components/firewall/live.js'
import type {Host, Inventory} from '../inventory/index.js'
import {Connection, type ConnectOptions} from '../remote/connection.js'
import {gatherFacts, pool} from './run.js'

export interface FirewallStatus extends Partial<FirewallDrift> {
  host: string
  backend: string
  error?: string
}

/** The live firewall of each host against the inventory's rules (read-only). */
export async function firewallStatus(inv: Inventory, hosts: Host[], o: ConnectOptions & {concurrency: number}): Promise<FirewallStatus[]> {
  return pool(hosts, o.concurrency, async (host) => {
    let conn: Connection | undefined
    try {
      conn = await Connection.open(host, o)
      const desired = desiredState(inv, host, {controlAddress: await conn.clientAddress(), only: ['firewall']})
      const facts = await gatherFacts(conn, desired)
      const drift = compareFirewall(host, desired.firewall!.rules, parseFirewallFacts(facts.firewall), desired.firewall!)
      return {host: host.name, backend: host.firewall.backend, ...drift}
    } catch (error) {
      return {host: host.name, backend: host.firewall.backend, error: error instanceof Error ? error.message : String(error)}
    } finally {
      conn?.close()
    }
  })
}
