import {type Stack, hostPorts} from '../../engine/desired.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner, Transport} from '../../remote/runner.js'
import {pool} from '../../util/pool.js'
import {desiredRules} from './index.js'
import {type FirewallDrift, compareFirewall, firewallFactsScript, parseFirewallFacts} from './live.js'

export interface FirewallStatus extends Partial<FirewallDrift> {
  host: string
  backend: string
  error?: string
}

/** The live firewall of each host against the inventory's rules (read-only). */
export async function firewallStatus(
  stack: Stack,
  inv: Inventory,
  hosts: Host[],
  o: {transport: Transport; concurrency: number},
): Promise<FirewallStatus[]> {
  return pool(hosts, o.concurrency, async (host) => {
    let runner: Runner | undefined
    try {
      runner = await o.transport.open(host)
      const want = desiredRules({inventory: inv, host, ports: hostPorts(stack, inv, host), controlAddress: await runner.clientAddress()})
      const live = await runner.run(firewallFactsScript(host))
      return {
        host: host.name,
        backend: host.firewall.backend,
        ...compareFirewall(host, want.rules, parseFirewallFacts(live.stdout.split('\n')), want),
      }
    } catch (error) {
      return {host: host.name, backend: host.firewall.backend, error: error instanceof Error ? error.message : String(error)}
    } finally {
      runner?.close()
    }
  })
}
