import ipaddr from 'ipaddr.js'
import type {FirewallRule} from '../components/firewall/rules.js'
import {ruleKey} from '../components/firewall/rules.js'
import type {Host, Inventory} from '../inventory/index.js'

/**
 * Who may talk to whom (pure): every allowed flow of every host's firewall, from the same rules the firewall
 * renders. A rule's source network is drawn as the inventory hosts it consists of when it is made of host addresses
 * only (foobar's own rules: web servers to the database port), else as one network node (the admin networks, a
 * monitoring source); no source is "anywhere".
 */

export interface GraphHost {
  id: string
  name: string
  address: string
  roles: string[]
}

export interface GraphNetwork {
  id: string
  /** The CIDR, or "anywhere". */
  label: string
}

export interface Flow {
  /** A host name or a network id. */
  from: string
  to: string
  /** `443/tcp`, or the protocol alone (`vrrp`). */
  service: string
  comment: string
}

export interface FlowGraph {
  hosts: GraphHost[]
  networks: GraphNetwork[]
  flows: Flow[]
}

const ANYWHERE = 'anywhere'

/** The inventory hosts a CIDR is made of, or undefined when it holds any address that is not a host's. */
function hostsOf(cidr: string, byAddress: Map<string, Host>): Host[] | undefined {
  const [net, bits] = ipaddr.parseCIDR(cidr)
  const width = net.kind() === 'ipv4' ? 32 : 128
  const size = 2 ** (width - bits)
  if (size > byAddress.size) return undefined
  const hosts: Host[] = []
  const bytes = net.toByteArray()
  for (let i = 0; i < size; i++) {
    // Add i to the network address (size is small: at most the number of hosts).
    const b = [...bytes]
    let carry = i
    for (let k = b.length - 1; k >= 0 && carry > 0; k--) {
      const sum = b[k]! + (carry & 0xff)
      b[k] = sum & 0xff
      carry = (carry >>> 8) + (sum >> 8)
    }
    const host = byAddress.get(ipaddr.fromByteArray(b).toNormalizedString())
    if (!host) return undefined
    hosts.push(host)
  }
  return hosts
}

export function flowGraph(inv: Inventory, rulesOf: (h: Host) => FirewallRule[]): FlowGraph {
  const byAddress = new Map(inv.hosts.map((h) => [ipaddr.parse(h.address).toNormalizedString(), h]))
  const networks = new Map<string, GraphNetwork>()
  const network = (label: string) => {
    const id = label === ANYWHERE ? 'net_anywhere' : `net_${label.replace(/[^0-9A-Za-z]/g, '_')}`
    if (!networks.has(id)) networks.set(id, {id, label})
    return id
  }
  const flows: Flow[] = []
  for (const host of inv.hosts) {
    for (const rule of rulesOf(host)) {
      const service = ruleKey(rule)
      const sources = rule.from.length === 0 ? [ANYWHERE] : rule.from
      for (const cidr of sources) {
        const members = cidr === ANYWHERE ? undefined : hostsOf(cidr, byAddress)
        const from = members ? members.map((h) => h.name) : [network(cidr)]
        for (const f of from) flows.push({from: f, to: host.name, service, comment: rule.comment})
      }
    }
  }
  return {
    hosts: inv.hosts.map((h) => ({id: h.name, name: h.name, address: h.address, roles: [...h.roles]})),
    networks: [...networks.values()],
    flows,
  }
}

/** The flows between two nodes, their services joined: one edge per pair in the drawings. */
function edges(g: FlowGraph): Array<{from: string; to: string; services: string[]}> {
  const byPair = new Map<string, {from: string; to: string; services: string[]}>()
  for (const f of g.flows) {
    const key = `${f.from}\0${f.to}`
    const e = byPair.get(key) ?? byPair.set(key, {from: f.from, to: f.to, services: []}).get(key)!
    if (!e.services.includes(f.service)) e.services.push(f.service)
  }
  return [...byPair.values()]
}

/** The tier a host is drawn in: its first role in stack order (a web server that is also a database: web). */
const TIERS = ['lb', 'web', 'db', 'monitoring'] as const
const tierOf = (h: GraphHost) => TIERS.find((t) => h.roles.includes(t)) ?? h.roles[0] ?? 'other'
const TIER_LABEL: Record<string, string> = {lb: 'load balancers', web: 'web servers', db: 'databases', monitoring: 'monitoring'}

const dotId = (s: string) => `"${s.replace(/["\\]/g, '\\$&').replace(/\n/g, '\\n')}"`

/** Graphviz: hosts grouped by tier left to right, networks on the left, one labelled edge per pair. */
export function toDot(g: FlowGraph, title: string): string {
  const lines = [
    `digraph ${dotId(title)} {`,
    '  rankdir=LR; nodesep=0.4; ranksep=1.1;',
    `  label=${dotId(title)}; labelloc=t; fontname="Helvetica";`,
    '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9, color="#4a5a70"];',
  ]
  for (const n of g.networks)
    lines.push(`  ${dotId(n.id)} [label=${dotId(n.label)}, shape=ellipse, fillcolor="${n.label === ANYWHERE ? '#fde7d9' : '#fff6d5'}"];`)
  for (const tier of [...new Set(g.hosts.map(tierOf))]) {
    lines.push(`  subgraph ${dotId(`cluster_${tier}`)} {`, `    label=${dotId(TIER_LABEL[tier] ?? tier)}; style=dashed; color="#9aa7b8";`)
    for (const h of g.hosts.filter((x) => tierOf(x) === tier))
      lines.push(`    ${dotId(h.id)} [label=${dotId(`${h.name}\n${h.address}\n${h.roles.join(', ')}`)}];`)
    lines.push('  }')
  }
  for (const e of edges(g)) lines.push(`  ${dotId(e.from)} -> ${dotId(e.to)} [label=${dotId(e.services.join('\n'))}];`)
  lines.push('}')
  return `${lines.join('\n')}\n`
}

const mermaidId = (s: string) => s.replace(/[^0-9A-Za-z_]/g, '_')
const mermaidText = (s: string) => s.replace(/"/g, '#quot;')

/** Mermaid (renders in GitHub's Markdown): the same picture as toDot. */
export function toMermaid(g: FlowGraph): string {
  const nets = new Set(g.networks.map((n) => n.id))
  const node = (id: string) => (nets.has(id) ? mermaidId(id) : `h_${mermaidId(id)}`)
  const lines = ['flowchart LR']
  for (const n of g.networks) lines.push(`  ${mermaidId(n.id)}(["${mermaidText(n.label)}"])`)
  for (const tier of [...new Set(g.hosts.map(tierOf))]) {
    lines.push(`  subgraph ${mermaidId(`tier_${tier}`)}["${TIER_LABEL[tier] ?? tier}"]`)
    for (const h of g.hosts.filter((x) => tierOf(x) === tier))
      lines.push(`    ${node(h.id)}["${mermaidText(`${h.name}<br/>${h.address}<br/>${h.roles.join(', ')}`)}"]`)
    lines.push('  end')
  }
  for (const e of edges(g)) lines.push(`  ${node(e.from)} -->|"${mermaidText(e.services.join(', '))}"| ${node(e.to)}`)
  return `${lines.join('\n')}\n`
}
