/**
 * `foobar inventory graph` (issue 21, item 7): the picture's edges are the rendered firewall rules — every allow rule
 * of every host's rendered ufw file is drawn, and nothing else is.
 */
import {spawnSync} from 'node:child_process'
import {describe, expect, test} from 'vitest'
import {aggregateCidrs, firewallRules} from '../../src/components/firewall/rules.js'
import {STACK} from '../../src/components/index.js'
import {hostPorts} from '../../src/engine/desired.js'
import {type FlowGraph, flowGraph, toDot, toMermaid} from '../../src/graph/index.js'
import type {Inventory} from '../../src/inventory/index.js'
import {hostCidr} from '../../src/util/address.js'
import {fileOf, loadExample, renderAll} from './support/render.js'
import {runCli} from './support/run-cli.js'

const graphOf = (inv: Inventory) => flowGraph(inv, (h) => firewallRules(h, hostPorts(STACK, inv, h)))

/** `dest service` -> sorted sources, from the rendered ufw files ("anywhere" for a rule without `from`). */
function renderedAllows(inv: Inventory): Map<string, string[]> {
  const files = renderAll(inv)
  const out = new Map<string, string[]>()
  for (const h of inv.hosts) {
    for (const line of fileOf(files, h.name, '/etc/foobar/firewall/ufw.rules').split('\n')) {
      const m = /^allow in proto (\w+)(?: from (\S+))?(?: to any port (\d+))?/.exec(line)
      if (!m) continue
      const key = `${h.name} ${m[3] ? `${m[3]}/${m[1]}` : m[1]}`
      out.set(key, [...(out.get(key) ?? []), m[2] ?? 'anywhere'].sort())
    }
  }
  return out
}

/** The same map from the graph: each flow's source back to a CIDR, re-aggregated as the firewall does. */
function drawnAllows(inv: Inventory, g: FlowGraph): Map<string, string[]> {
  const nets = new Map(g.networks.map((n) => [n.id, n.label]))
  const cidrs = new Map<string, string[]>()
  for (const f of g.flows) {
    const host = inv.hosts.find((h) => h.name === f.from)
    const key = `${f.to} ${f.service}`
    cidrs.set(key, [...(cidrs.get(key) ?? []), host ? hostCidr(host) : nets.get(f.from)!])
  }
  return new Map([...cidrs].map(([k, v]) => [k, v.includes('anywhere') ? ['anywhere'] : aggregateCidrs(v).sort()] as [string, string[]]))
}

describe.each(['foobar', 'lab', 'lab-ha'] as const)('inventories/%s.yml', (name) => {
  const inv = loadExample(name)
  const g = graphOf(inv)

  test('the edges are exactly the rendered firewall rules', () => {
    const rendered = renderedAllows(inv)
    expect(rendered.size).toBeGreaterThan(inv.hosts.length)
    expect(Object.fromEntries(drawnAllows(inv, g))).toEqual(Object.fromEntries(rendered))
  })

  test('dot renders with Graphviz; mermaid names every host and flow', () => {
    const dot = toDot(g, 'flows')
    const svg = spawnSync('dot', ['-Tsvg'], {input: dot, encoding: 'utf8'})
    expect(svg.status, svg.stderr).toBe(0)
    for (const h of inv.hosts) expect(svg.stdout).toContain(`<title>${h.name}</title>`)
    const mermaid = toMermaid(g)
    expect(mermaid.startsWith('flowchart LR\n')).toBe(true)
    for (const h of inv.hosts) expect(mermaid).toContain(`h_${h.name}["${h.name}<br/>${h.address}`)
  })
})

test('the database port is drawn between the database hosts only, and HTTPS from anywhere only to the LB', () => {
  const inv = loadExample('lab')
  const g = graphOf(inv)
  const to = (service: string) =>
    g.flows
      .filter((f) => f.service === service)
      .map((f) => `${f.from}->${f.to}`)
      .sort()
  expect(to('3306/tcp')).toEqual(['web1->web2', 'web2->web1'])
  expect(to('443/tcp')).toEqual(['lb1->web1', 'lb1->web2', 'net_anywhere->lb1'])
})

test('foobar inventory graph: dot on stdout, svg to a file, --json the flows', async () => {
  const dot = await runCli(['inventory', 'graph', '-i', 'inventories/lab.yml'])
  expect(dot.code, dot.stderr).toBe(0)
  expect(dot.stdout).toMatch(/^digraph "www\.foobar\.test: allowed flows" \{/)
  const json = await runCli(['inventory', 'graph', '-i', 'inventories/lab.yml', '--json'])
  expect(JSON.parse(json.stdout).result.flows).toContainEqual({from: 'web2', to: 'web1', service: '3306/tcp', comment: expect.any(String)})
  const bad = await runCli(['inventory', 'graph', '-i', 'inventories/lab.yml', '--format', 'png'])
  expect(bad.code).toBe(2)
})
