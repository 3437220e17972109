import {isIP} from 'node:net'
import {PORTLESS, type PortRule, type Protocol} from '../../engine/contract.js'
import {type Host, type Inventory, sshPort} from '../../inventory/index.js'
import {hostCidr} from '../../util/address.js'
import {memoByObject} from '../../util/memo.js'

/** One allow rule. Everything not allowed is dropped (default deny incoming). */
export type FirewallRule = PortRule

/**
 * The rules a host needs (pure): SSH from the admin networks and from the address foobar connects from, the
 * ports every component on the host opens (`ports`), and the inventory's extra ports. Sorted for stable output;
 * the same list feeds ufw, iptables and the port-matrix checks. An extra port on a port that SSH or a component
 * already governs must be marked `override` (the inventory loader refuses it otherwise; this is the second line);
 * the merged rule's comment then says it was widened.
 */
export function firewallRules(host: Host, ports: PortRule[], controlAddress?: string): FirewallRule[] {
  const rules: FirewallRule[] = []
  const extras = new Set<FirewallRule>()
  const add = (port: number | undefined, from: string[], comment: string, proto: Protocol = 'tcp') => {
    const rule: FirewallRule = PORTLESS.includes(proto)
      ? {proto, from: aggregateCidrs(from), comment}
      : {port, proto, from: aggregateCidrs(from), comment}
    rules.push(rule)
    return rule
  }

  // The address foobar connects from is always allowed too: a change must never cut off the one applying it.
  const control = controlAddress && host.firewall.allowControlAddress ? [`${controlAddress}/${isIP(controlAddress) === 6 ? 128 : 32}`] : []
  add(sshPort(host), [...host.firewall.adminCidrs, ...control], 'ssh from admin networks')
  for (const p of ports) add(p.port, p.from, p.comment, p.proto)
  const governed = new Set(rules.map(ruleKey))
  for (const role of host.roles) {
    for (const extra of host.firewall.extraPorts[role] ?? []) {
      if (extra.override === undefined && governed.has(`${extra.port}/${extra.proto}`))
        throw new Error(
          `${host.name}: the extra ${role} port ${extra.port}/${extra.proto} would widen foobar's own rule for that port; it needs override (the inventory loader refuses it)`,
        )
      extras.add(add(extra.port, extra.from, extra.comment ?? `extra ${role} port`, extra.proto))
    }
  }
  return mergeRules(rules, extras)
}

/**
 * Same port and protocol: one rule with the union of sources (anywhere wins). Every comment describes the rule it
 * sits on: a component's rule that covers the other takes its comment (80 from anywhere on an LB that is also a web
 * server), and a rule widened by an extra port says so (`ssh from admin networks, widened by extra lb port`).
 */
function mergeRules(rules: FirewallRule[], extras: Set<FirewallRule>): FirewallRule[] {
  const byKey = new Map<string, FirewallRule>()
  for (const r of rules) {
    const key = ruleKey(r)
    const prev = byKey.get(key)
    if (!prev) {
      byKey.set(key, {...r})
      continue
    }
    if (prev.from.length === 0) continue
    const from = r.from.length === 0 ? [] : aggregateCidrs([...prev.from, ...r.from])
    if (from.length === prev.from.length && from.every((c, i) => c === prev.from[i])) continue
    const how = from.length === 0 ? 'widened to anywhere by' : 'widened by'
    const covers = from.length === r.from.length && from.every((c, i) => c === r.from[i])
    if (covers && !extras.has(r)) prev.comment = r.comment
    else if (r.comment !== prev.comment) prev.comment = `${prev.comment}, ${how} ${r.comment}`.slice(0, 200)
    prev.from = from
  }
  // Portless protocols (vrrp) after the ports.
  return [...byKey.values()].sort((a, b) => (a.port ?? 65536) - (b.port ?? 65536) || a.proto.localeCompare(b.proto))
}

/** `443/tcp`, or the protocol alone for a portless one (`vrrp`). */
export const ruleKey = (r: Pick<FirewallRule, 'port' | 'proto'>) => (r.port === undefined ? r.proto : `${r.port}/${r.proto}`)

/** Sources are validated CIDRs (the inventory schema), so a colon means IPv6; no re-parsing (hot at 1,000 hosts). */
export const familyOf = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4)

/** The rule's sources for one address family; `undefined` when the rule does not apply to that family. */
export function sourcesFor(rule: FirewallRule, family: 4 | 6): string[] | undefined {
  if (rule.from.length === 0) return []
  const mine = rule.from.filter((c) => familyOf(c) === family)
  return mine.length ? mine : undefined
}

/**
 * The fewest networks that cover exactly the same addresses: duplicates, overlaps and adjacent networks merged
 * (10.0.0.2/32 + 10.0.0.3/32 -> 10.0.0.2/31). Keeps rule lists short: without it every database host in a
 * 1,000-host fleet would carry one line per peer (O(n^2) lines overall). Sorted for stable output.
 */
export function aggregateCidrs(cidrs: readonly string[]): string[] {
  if (canonical.has(cidrs)) return cidrs as string[]
  if (cidrs.length === 0) return []
  const out: string[] = []
  for (const family of [4, 6] as const) {
    const ranges = cidrs
      .filter((c) => familyOf(c) === family)
      .map((c) => cidrRange(c, BITS[family]))
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    for (const [start, end] of mergeRanges(ranges)) out.push(...blocks(start, end, family))
  }
  return out.sort()
}

const BITS = {4: 32, 6: 128} as const

/** Lists that are their own aggregate (a host group's, frozen): aggregating them again returns them as they are. */
const canonical = new WeakSet<readonly string[]>()

/** Sorted ranges with duplicates, overlaps and neighbours merged. */
function mergeRanges(sorted: Array<[bigint, bigint]>): Array<[bigint, bigint]> {
  const merged: Array<[bigint, bigint]> = []
  for (const [start, end] of sorted) {
    const last = merged.at(-1)
    if (last && start <= last[1] + 1n) last[1] = end > last[1] ? end : last[1]
    else merged.push([start, end])
  }
  return merged
}

/** [start, end] as the largest aligned blocks. */
function blocks(start: bigint, end: bigint, family: 4 | 6): string[] {
  const bits = BITS[family]
  const out: string[] = []
  let s = start
  while (s <= end) {
    let prefix = bits
    while (prefix > 0) {
      const block = 1n << BigInt(bits - prefix + 1)
      if (s % block !== 0n || s + block - 1n > end) break
      prefix--
    }
    out.push(`${formatAddress(s, family)}/${prefix}`)
    s += 1n << BigInt(bits - prefix)
  }
  return out
}

/** A host group's addresses, aggregated once per inventory. */
interface GroupNetworks {
  members: Set<Host>
  /** aggregateCidrs of every member's address (frozen, shared). */
  all: readonly string[]
  /** How many members have each address (`family:start`): one leaving takes its address with it only when alone. */
  count: Map<string, number>
  /** Per family, the merged ranges in order, each with its blocks in `all`. */
  ranges: Record<4 | 6, Array<{start: bigint; end: bigint; blocks: string[]}>>
}

/**
 * The hosts a predicate picks (e.g. every web and database host) as firewall sources: `all` their addresses as the
 * fewest networks, or `except` one host's own. Worked out once per inventory; a host's peers are then the group's
 * networks with the one range around its address re-split, not thousands of addresses aggregated for every host
 * (what made rendering 10,000 hosts quadratic). The same networks as aggregateCidrs of the filtered list, exactly.
 */
export function hostGroup(picks: (h: Host) => boolean) {
  const networks = memoByObject((inv: Inventory): GroupNetworks => {
    const members = inv.hosts.filter(picks)
    const count = new Map<string, number>()
    const ranges: GroupNetworks['ranges'] = {4: [], 6: []}
    const all: string[] = []
    for (const family of [4, 6] as const) {
      const sorted = members
        .filter((h) => h.family === family)
        .map((h) => {
          const range = cidrRange(hostCidr(h), BITS[family])
          const key = `${family}:${range[0]}`
          count.set(key, (count.get(key) ?? 0) + 1)
          return range
        })
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      for (const [start, end] of mergeRanges(sorted)) {
        const b = blocks(start, end, family)
        ranges[family].push({start, end, blocks: b})
        all.push(...b)
      }
    }
    const frozen = Object.freeze(all.sort())
    canonical.add(frozen)
    return {members: new Set(members), all: frozen, count, ranges}
  })
  // Shared lists are frozen: a caller that changed one would change every host's rules (it throws instead).
  return {
    all: (inv: Inventory): string[] => networks(inv).all as string[],
    /** The group's networks without `host`'s own address (unless another member shares it). */
    except(inv: Inventory, host: Host): string[] {
      const g = networks(inv)
      if (!g.members.has(host)) return g.all as string[]
      const [address] = cidrRange(hostCidr(host), BITS[host.family])
      if (g.count.get(`${host.family}:${address}`)! > 1) return g.all as string[]
      const ranges = g.ranges[host.family]
      let lo = 0
      let hi = ranges.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if (ranges[mid]!.start <= address) lo = mid
        else hi = mid - 1
      }
      const around = ranges[lo]!
      const drop = new Set(around.blocks)
      const out = g.all.filter((b) => !drop.has(b))
      if (around.start < address) out.push(...blocks(around.start, address - 1n, host.family))
      if (address < around.end) out.push(...blocks(address + 1n, around.end, host.family))
      const peers = Object.freeze(out.sort())
      canonical.add(peers)
      return peers as string[]
    },
  }
}

// The same peers recur in every host's rules: parse each network once.
const rangeCache = new Map<string, readonly [bigint, bigint]>()

function cidrRange(cidr: string, bits: number): [bigint, bigint] {
  let range = rangeCache.get(cidr)
  if (!range) {
    range = parseRange(cidr, bits)
    if (rangeCache.size < 100_000) rangeCache.set(cidr, range)
  }
  return [range[0], range[1]]
}

function parseRange(cidr: string, bits: number): readonly [bigint, bigint] {
  const [ip, len] = cidr.split('/') as [string, string | undefined]
  const prefix = len === undefined ? bits : Number(len)
  const hostBits = BigInt(bits - prefix)
  const start = (parseAddress(ip, bits) >> hostBits) << hostBits
  return [start, start + (1n << hostBits) - 1n]
}

function parseAddress(ip: string, bits: number): bigint {
  if (bits === 32) return ip.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n)
  let text = ip.split('%')[0]!
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n)
}

function formatAddress(n: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join('.')
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => ((n >> shift) & 0xffffn).toString(16))
  // Canonical text (RFC 5952: longest zero run compressed, lowercase), as the URL parser writes it.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1)
}
