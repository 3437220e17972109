import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {STACK} from '../components/index.js'
import {type HostDesired, desiredState} from '../engine/desired.js'
import type {Host, Inventory} from '../inventory/index.js'

export interface RenderedFile {
  host: string
  path: string
  mode: string
  bytes: number
}

/** Renders every host in memory first, so a failure writes nothing; then writes DIR/<host>/<absolute path>. */
export async function renderToDirectory(inventory: Inventory, hosts: Host[], outDir: string): Promise<RenderedFile[]> {
  return writeRendered(renderHosts(inventory, hosts), outDir)
}

/** Every host's desired state, in memory (pure; throws before anything is written). */
export function renderHosts(inventory: Inventory, hosts: Host[]): HostDesired[] {
  return hosts.map((host) => desiredState(STACK, inventory, host))
}

/**
 * Writes rendered states to DIR/<host>/<absolute path>. Synchronous, each directory made once: for thousands of
 * small files this is several times faster than one awaited mkdir + writeFile per file (the bench writes ~5,000).
 */
export function writeRendered(states: HostDesired[], outDir: string): RenderedFile[] {
  const written: RenderedFile[] = []
  const root = resolve(outDir)
  const dirs = new Set<string>()
  for (const state of states) {
    for (const f of state.files) {
      if (f.secret) continue
      const target = join(root, state.host.name, f.path)
      const dir = dirname(target)
      if (!dirs.has(dir)) {
        mkdirSync(dir, {recursive: true})
        dirs.add(dir)
      }
      writeFileSync(target, f.content, {mode: f.mode})
      written.push({host: state.host.name, path: f.path, mode: f.mode.toString(8).padStart(4, '0'), bytes: Buffer.byteLength(f.content)})
    }
  }
  return written
}
