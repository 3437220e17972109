import {UserError} from '../util/errors.js'
import type {Host, Inventory} from './resolved.js'
import {ROLES} from './schema.js'

/**
 * `--limit web1,lb`: host names or role names; unknown names are an error rather than silently nothing, and so is a
 * limit with no name in it (`--limit ""`: a script whose variable was empty must not run on nothing and exit 0).
 */
export function selectHosts(inventory: Inventory, limit: string[] | undefined): Host[] {
  if (!limit || limit.length === 0) return inventory.hosts
  const wanted = limit.map((l) => l.trim()).filter(Boolean)
  if (wanted.length === 0) {
    throw new UserError(
      `--limit ${JSON.stringify(limit.join(','))} names no host or role: it selected nothing`,
      [`hosts: ${inventory.hosts.map((h) => h.name).join(', ')}`, `roles: ${ROLES.join(', ')}`],
      ['Name hosts or roles (--limit web1,lb), or leave --limit out for every host.'],
    )
  }
  const unknown = wanted.filter((w) => !inventory.hosts.some((h) => h.name === w) && !(ROLES as readonly string[]).includes(w))
  if (unknown.length > 0) {
    throw new UserError(`--limit: no host or role named ${unknown.map((u) => JSON.stringify(u)).join(', ')}`, [
      `hosts: ${inventory.hosts.map((h) => h.name).join(', ')}`,
      `roles: ${ROLES.join(', ')}`,
    ])
  }
  return inventory.hosts.filter((h) => wanted.includes(h.name) || h.roles.some((r) => wanted.includes(r)))
}
