import {UserError} from '../util/errors.js'
import {MAX_HOSTS} from './paths.js'

export interface LabHost {
  name: string
  address: string
  roles: string[]
}

/** What the lab needs from an inventory (kept independent of the inventory module). */
export interface LabSpec {
  hosts: LabHost[]
  /** The site's domain and aliases, served by the first `lb` host in the lab DNS. */
  domain: string
  aliases: string[]
  /** The load balancers' floating address (lb.vip), when they share one: the site's DNS names point there. */
  vip?: string
}

/**
 * The hosts to boot: the first `count` of the inventory's, or all of them plus `extra1`, `extra2`, ... on the next
 * addresses of the subnet.
 */
export function planHosts(spec: LabSpec, count = spec.hosts.length): LabHost[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) {
    throw new UserError(`--hosts must be a whole number from 1 to ${MAX_HOSTS} (got ${count})`)
  }
  for (const h of spec.hosts) {
    if (!/^10\.77\.0\.(\d+)$/.test(h.address) || lastOctet(h.address) < 2 || lastOctet(h.address) > 254) {
      throw new UserError(`lab host ${h.name} has address ${h.address}: lab hosts must be on 10.77.0.2-254`)
    }
  }
  const hosts = spec.hosts.slice(0, count)
  let next = Math.max(10, ...spec.hosts.map((h) => lastOctet(h.address))) + 1
  for (let i = 1; hosts.length < count; i++, next++) {
    hosts.push({name: `extra${i}`, address: `10.77.0.${next}`, roles: []})
  }
  return hosts
}

function lastOctet(address: string): number {
  return Number(address.split('.').pop())
}

/** A lab host's name in the lab DNS. */
export const hostRecordName = (host: string) => `${host}.lab.foobar.test`

/**
 * DNS names the lab registers: the site on the floating address when the load balancers share one, else on the
 * first `lb` host (else the first host); every host by name.
 */
export function dnsRecords(spec: LabSpec, hosts: LabHost[]): Array<{name: string; address: string}> {
  const front = spec.vip ?? (spec.hosts.find((h) => h.roles.includes('lb')) ?? spec.hosts[0])?.address
  const site = front ? [spec.domain, ...spec.aliases].map((name) => ({name, address: front})) : []
  return [...site, ...hosts.map((h) => ({name: hostRecordName(h.name), address: h.address}))]
}
