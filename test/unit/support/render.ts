import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {desiredState} from '../../../src/components/index.js'
import type {DesiredFile} from '../../../src/engine/contract.js'
import {type Inventory, parseInventory} from '../../../src/inventory/index.js'

export const ROOT = resolve(import.meta.dirname, '..', '..', '..')
export const EXAMPLES = ['foobar', 'lab'] as const
export type Example = (typeof EXAMPLES)[number]

/** Example inventories whose renderings have no snapshots. */
export const OTHER_EXAMPLES = ['lab-ha', 'lab-monitoring', 'foobar-split', 'foobar-galera'] as const

/** An example inventory (also the OTHER_EXAMPLES), optionally with its text changed first. */
export function loadExample(name: Example | (typeof OTHER_EXAMPLES)[number], patch: (text: string) => string = (t) => t): Inventory {
  const file = join(ROOT, 'inventories', `${name}.yml`)
  return parseInventory(patch(readFileSync(file, 'utf8')), file)
}

/** The same inventory with `firewall: {backend: iptables}`. */
export const iptablesVariant = (text: string) => {
  if (!text.includes('  backend: ufw\n')) throw new Error('example inventory no longer sets firewall.backend: ufw')
  return text.replace('  backend: ufw\n', '  backend: iptables\n')
}

/** host name -> files, exactly as `foobar render` would write them (no TLS material, secrets left out). */
export function renderAll(inv: Inventory): Map<string, DesiredFile[]> {
  return new Map(inv.hosts.map((h) => [h.name, desiredState(inv, h).files.filter((f) => !f.secret)]))
}

export function fileOf(files: Map<string, DesiredFile[]>, host: string, path: string): string {
  const f = files.get(host)?.find((x) => x.path === path)
  if (!f) throw new Error(`${host} has no rendered ${path}`)
  return f.content
}
