import {lookup} from 'node:dns/promises'
import {existsSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import {isIP} from 'node:net'
import {dirname, resolve} from 'node:path'
import {UserError} from '../util/errors.js'
import {composeInventory, type NewHost, type NewInventory} from './compose.js'
import {parseInventory} from './loader.js'

/**
 * Writing a new inventory (init, import): names resolved to addresses, the text validated as any inventory is, and
 * an existing file never replaced without `force`. Nothing is written when anything is wrong.
 */
export async function resolveAddresses(hosts: NewHost[], notes: string[]): Promise<NewHost[]> {
  return Promise.all(
    hosts.map(async (h) => {
      if (isIP(h.address)) return h
      try {
        const {address} = await lookup(h.address)
        notes.push(`${h.name}: ${h.address} resolved to ${address}`)
        return {...h, address}
      } catch {
        throw new UserError(
          `${h.name}: its address ${h.address} is not an IP address and does not resolve`,
          [],
          ['give it an ansible_host / HostName that is an IP address, or fix the name'],
        )
      }
    }),
  )
}

export async function writeNewInventory(file: string, n: NewInventory, force: boolean): Promise<{file: string; text: string}> {
  const path = resolve(file)
  if (existsSync(path) && !force) throw new UserError(`${file} exists: not replaced`, [], [`--force replaces it`, `--out OTHER.yml`])
  if (n.hosts.length === 0) throw new UserError('no host to write: the inventory needs at least one host with a role')
  const text = composeInventory(n)
  // The same checks as `inventory check` (roles, addresses, the mysql section, firewall policy): errors name the field.
  parseInventory(text, file)
  await mkdir(dirname(path), {recursive: true})
  await writeFile(path, text, {mode: 0o644})
  return {file: path, text}
}
