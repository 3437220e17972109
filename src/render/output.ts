import {mkdir, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {desiredState} from '../components/index.js'
import type {Host, Inventory} from '../inventory/index.js'

export interface RenderedFile {
  host: string
  path: string
  mode: string
  bytes: number
}

/** Renders every host in memory first, so a failure writes nothing; then writes DIR/<host>/<absolute path>. */
export async function renderToDirectory(inventory: Inventory, hosts: Host[], outDir: string): Promise<RenderedFile[]> {
  const all = hosts.map((host) => desiredState(inventory, host))
  const written: RenderedFile[] = []
  for (const state of all) {
    for (const f of state.files) {
      if (f.secret) continue
      const target = join(resolve(outDir), state.host.name, f.path)
      await mkdir(dirname(target), {recursive: true})
      await writeFile(target, f.content, {mode: f.mode})
      written.push({host: state.host.name, path: f.path, mode: f.mode.toString(8).padStart(4, '0'), bytes: Buffer.byteLength(f.content)})
    }
  }
  return written
}
