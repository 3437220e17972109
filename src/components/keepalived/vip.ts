import ipaddr from 'ipaddr.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {Failure} from '../../util/errors.js'
import {shq} from '../../util/shell.js'
import {sleep} from '../../util/wait.js'

/*
 * The floating address on the hosts: where it lives (the interface and network read on the host), who holds it, and
 * whether a load balancer could take it over.
 */

/** The load balancers sharing lb.vip (the inventory loader makes every one have the same). */
export const sharingLbs = (inv: Inventory): Host[] => inv.hosts.filter((h) => h.roles.includes('lb') && h.lb.vip !== undefined)

export const vipOf = (inv: Inventory): string | undefined => sharingLbs(inv)[0]?.lb.vip

/**
 * Read on the host before rendering: the interface and network of the host's own address (`ip -o addr show to`),
 * or every IPv4 network of lb.vip_interface when it is set.
 */
export function discoverScript(host: Host): string {
  return host.lb.vipInterface ? `ip -o -4 addr show dev ${shq(host.lb.vipInterface)}` : `ip -o addr show to ${shq(host.address)}`
}

/** `2: eth0    inet 10.77.0.11/24 brd ... scope global eth0\ ...` -> interface and network. */
export function parseAddressLines(lines: string[]): Array<{iface: string; address: string; prefix: number}> {
  return lines.flatMap((l) => {
    const m = /^\d+:\s+([^\s@]+)(?:@\S+)?\s+inet6?\s+([0-9a-fA-F:.]+)\/(\d+)/.exec(l)
    return m ? [{iface: m[1]!, address: m[2]!, prefix: Number(m[3])}] : []
  })
}

/**
 * The interface the floating address goes on and its prefix length: that of the host's network that holds it. A
 * host whose address no interface holds (behind a NAT) needs lb.vip_interface; an address off every network of the
 * interface is refused (the peers and the clients on that network would never reach it).
 */
export function placement(host: Host, discovered: string[]): {iface: string; prefix: number} {
  const vip = host.lb.vip!
  const found = parseAddressLines(discovered)
  if (found.length === 0) {
    throw new Failure(
      host.lb.vipInterface
        ? `${host.name}: lb.vip_interface ${host.lb.vipInterface}: the host has no such interface with an IPv4 address`
        : `${host.name}: no interface on the host holds its address ${host.address} (behind a NAT?): set lb.vip_interface to the interface the floating address ${vip} belongs on`,
    )
  }
  const iface = host.lb.vipInterface ?? found[0]!.iface
  const parsed = ipaddr.parse(vip)
  const network = found.find((f) => {
    const a = ipaddr.parse(f.address)
    return a.kind() === parsed.kind() && parsed.match(a, f.prefix)
  })
  if (!network) {
    const nets = found.map((f) => `${ipaddr.IPv4.networkAddressFromCIDR(`${f.address}/${f.prefix}`).toString()}/${f.prefix}`).join(', ')
    throw new Failure(
      `${host.name}: lb.vip ${vip} is not on ${iface}'s network (${nets}): the floating address must be an unused address of the load balancers' network`,
    )
  }
  return {iface, prefix: network.prefix}
}

/** Exit 0 when the host holds the address. */
export const holdsScript = (vip: string) => `ip -o addr show to ${shq(vip)} | grep -q .`

export async function holds(runner: Runner): Promise<boolean> {
  const vip = runner.host.lb.vip
  if (!vip) return false
  return (await runner.run(holdsScript(vip), {check: false})).code === 0
}

/**
 * Which of the load balancers (of `among`, default all) hold the address now, each asked over its own connection;
 * unreachable ones are listed apart.
 */
export async function vipHolders(
  inv: Inventory,
  connect: (h: Host) => Promise<Runner>,
  among?: Host[],
): Promise<{holders: string[]; unreachable: string[]}> {
  const holders: string[] = []
  const unreachable: string[] = []
  for (const lb of sharingLbs(inv).filter((h) => !among || among.includes(h))) {
    try {
      if (await holds(await connect(lb))) holders.push(lb.name)
    } catch {
      unreachable.push(lb.name)
    }
  }
  return {holders, unreachable}
}

/**
 * Ready to take the address over: keepalived active and the track script passing, twice a second apart. A host
 * without keepalived's config yet (a firewall-only run before the first provision) has nothing to wait for.
 */
export async function waitReady(runner: Runner, conf: string, check: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let passes = 0
  let last = ''
  for (;;) {
    const r = await runner.run(`[ ! -s ${shq(conf)} ] || { systemctl is-active --quiet keepalived && ${check}; }`, {check: false})
    if (r.code === 0) {
      if (++passes >= 2) return
    } else {
      passes = 0
      last = (r.stderr || r.stdout).trim().split('\n').pop() || `exit ${r.code}`
    }
    if (Date.now() > deadline) throw new Failure(`${runner.host.name}: keepalived not ready after ${timeoutMs / 1000}s (${last})`)
    await sleep(1000)
  }
}
