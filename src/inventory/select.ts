import picomatch from 'picomatch'
import {UserError} from '../util/errors.js'
import type {Host, Inventory} from './resolved.js'
import {ROLES} from './schema.js'

/** A --limit term that is a pattern over host names (`web*`, `web[12]`, `db?`) rather than a name or a role. */
const isPattern = (term: string) => /[*?[\]]/.test(term)

/**
 * `--limit web1,lb,'web*','!web2'`: host names, role names, glob patterns over host names (picomatch: `*`, `?`,
 * `[12]`), and any of these after `!` to leave hosts out (alone, `!x` means every host but x). Unknown names and
 * patterns matching no host are an error rather than silently nothing, and so is a limit with no term in it
 * (`--limit ""`: a script whose variable was empty must not run on nothing and exit 0), or one whose exclusions
 * leave nothing. Inventory order is kept.
 */
export function selectHosts(inventory: Inventory, limit: string[] | undefined): Host[] {
  if (!limit || limit.length === 0) return inventory.hosts
  const wanted = limit.map((l) => l.trim()).filter(Boolean)
  const context = [`hosts: ${inventory.hosts.map((h) => h.name).join(', ')}`, `roles: ${ROLES.join(', ')}`]
  if (wanted.length === 0) {
    throw new UserError(`--limit ${JSON.stringify(limit.join(','))} names no host or role: it selected nothing`, context, [
      'Name hosts or roles (--limit web1,lb), or leave --limit out for every host.',
    ])
  }
  const excluded = wanted.filter((w) => w.startsWith('!')).map((w) => w.slice(1).trim())
  const included = wanted.filter((w) => !w.startsWith('!'))
  if (excluded.some((e) => e === '')) throw new UserError('--limit: "!" must be followed by a host, role or pattern to leave out', context)
  const matchers = new Map([...included, ...excluded].filter(isPattern).map((p) => [p, picomatch(p, {dot: true})] as const))
  const matches = (term: string, h: Host) =>
    h.name === term || h.roles.includes(term as (typeof h.roles)[number]) || (matchers.get(term)?.(h.name) ?? false)
  const unknown = [...included, ...excluded].filter(
    (t) => !(ROLES as readonly string[]).includes(t) && !inventory.hosts.some((h) => matches(t, h)),
  )
  if (unknown.length > 0) {
    const what = unknown.map((u) => (isPattern(u) ? `matching ${JSON.stringify(u)}` : `named ${JSON.stringify(u)}`)).join(', ')
    throw new UserError(`--limit: no host or role ${what}`, context)
  }
  const base = included.length ? inventory.hosts.filter((h) => included.some((t) => matches(t, h))) : inventory.hosts
  const selected = base.filter((h) => !excluded.some((t) => matches(t, h)))
  if (selected.length === 0 && (excluded.length > 0 || included.some(isPattern))) {
    throw new UserError(`--limit ${wanted.join(',')}: selected no host`, context)
  }
  return selected
}
