import {upgradeWindowProblems} from './upgrade-windows.js'
import {readFile} from 'node:fs/promises'
import {isIP} from 'node:net'
import {resolve} from 'node:path'
import {isDeepStrictEqual} from 'node:util'
import {type Document, LineCounter, type Node, parseDocument, visit} from 'yaml'
import type {z} from 'zod'
import {UserError} from '../util/errors.js'
import {DEFAULTS} from './defaults.js'
import {
  type FieldPath,
  InventoryError,
  type InventoryProblem,
  SourceLocator,
  describeNonAscii,
  formatPath,
  keyInPath,
  showKey,
  showValue,
} from './errors.js'
import {firewallPolicy} from './firewall-policy.js'
import {floatingAddress} from './floating-address.js'
import {addressKey} from './primitives.js'
import {type Inventory, type TlsSource, inventoryResolver} from './resolved.js'
import {type InventoryFile, type Layer, ROLES, inventorySchema} from './schema.js'

export {expandPath} from './resolved.js'

/** Reads, validates and resolves an inventory file. Throws InventoryError (exit 2) listing every problem. */
export async function loadInventory(file: string): Promise<Inventory> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = isObj(error) && typeof error.code === 'string' ? error.code : undefined
    throw new UserError(
      `${file}: cannot read the inventory (${code ?? String(error)})`,
      [],
      ['Pass the inventory with -i FILE or set FOOBAR_INVENTORY.'],
    )
  }
  return parseInventory(text, path)
}

/** Pure: inventory text -> resolved inventory. `file` is used for messages and relative paths. */
export function parseInventory(text: string, file: string): Inventory {
  const lines = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lines, prettyErrors: false, uniqueKeys: true})
  const locator = new SourceLocator(file, doc, lines)
  const at = (pos: number) => {
    const {line, col} = lines.linePos(pos)
    return `${file}:${line}:${col}`
  }
  // Warnings too: an unknown tag (`!foo`, `!!js/function`) is kept as a plain value by the parser; here it is an error.
  const yamlProblems = [...doc.errors, ...doc.warnings]
  if (yamlProblems.length > 0) {
    throw new InventoryError(
      file,
      yamlProblems.map((e) => ({location: at(e.pos[0]), field: 'YAML', message: e.message.split('\n')[0] ?? e.message})),
    )
  }
  let raw: unknown
  try {
    raw = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT})
  } catch (error) {
    // yaml refuses aliases that expand beyond maxAliasCount (a "billion laughs" document) with a ReferenceError.
    if (!(error instanceof ReferenceError)) throw error
    const alias = firstAlias(doc)
    throw new InventoryError(file, [
      {
        location: at(alias?.range?.[0] ?? 0),
        field: 'YAML',
        message: `aliases (*name) expand to more than ${MAX_ALIAS_COUNT} nodes: refused as a resource-exhaustion document (${error.message})`,
      },
    ])
  }
  const parsed = inventorySchema.safeParse(raw)
  const problems: InventoryProblem[] = parsed.success ? [] : parsed.error.issues.flatMap((i) => fromZodIssue(i, locator))
  problems.push(...crossCheck(raw))
  if (parsed.success) problems.push(...checkApp(parsed.data))
  let inventory: Inventory | undefined
  if (parsed.success) {
    // Resolved even when the cross-field rules failed, so that disagreeing hosts are listed with those problems.
    const resolved = resolveInventory(parsed.data, file)
    if (resolved.success) {
      inventory = resolved.data
      problems.push(...checkInventoryWide(parsed.data, inventory), ...checkAppPorts(inventory))
      for (const p of upgradeWindowProblems(inventory)) {
        problems.push({path: ['hosts', inventory.hosts.findIndex((h) => h.name === p.host), 'upgrades'], message: p.message})
      }
    } else {
      problems.push(...resolved.error.issues.flatMap((i) => fromZodIssue(i, locator)))
    }
  }
  let warnings: string[] = []
  if (parsed.success && inventory !== undefined) {
    const policy = firewallPolicy(parsed.data, inventory)
    const vip = floatingAddress(parsed.data, inventory)
    problems.push(...policy.problems, ...vip.problems)
    warnings = [...policy.warnings, ...vip.warnings]
  }
  if (problems.length > 0 || inventory === undefined) {
    throw new InventoryError(
      file,
      dedupe(problems).map((p) => ({
        location: locator.locate(p.path, p.atKey),
        field: formatPath(p.atKey ? [...p.path, keyInPath(p.atKey)] : p.path),
        message: p.message,
      })),
    )
  }
  return warnings.length > 0 ? {...inventory, warnings} : inventory
}

/** Aliases may expand to at most this many nodes in all (yaml's own default, made explicit). */
const MAX_ALIAS_COUNT = 100

function firstAlias(doc: Document): Node | undefined {
  let found: Node | undefined
  visit(doc, {
    Alias: (_key, node) => {
      found = node
      return visit.BREAK
    },
  })
  return found
}

/** Each host's layers merged (defaults <- top level <- its roles, in order <- the host), then parsed into the model. */
function resolveInventory(data: InventoryFile, file: string) {
  const {site, mysql, app, alerting, roles, hosts, ...top} = data
  // The app's health path is the load balancer's check unless a layer says otherwise (checkApp: never differently).
  const appLayer: Layer | undefined = app && {lb: {health_check: app.health ?? APP_HEALTH_DEFAULT}}
  return inventoryResolver({file, siteEmail: site.email}).safeParse({
    site,
    mysql,
    app,
    alerting,
    hosts: hosts.map(({name, address, roles: hostRoles, ...own}) => ({
      name,
      address,
      roles: hostRoles,
      ...mergeLayers(DEFAULTS, appLayer, top, ...hostRoles.map((r) => roles?.[r]), own),
    })),
  })
}

/** The health path of an app the inventory names without `health`. */
export const APP_HEALTH_DEFAULT = '/'

/**
 * The site's own app (app): its health path is the load balancer's check, so an lb.health_check written anywhere
 * must say the same; mysql.app is the default app's account, so it goes with the default app; it runs on web servers.
 */
function checkApp(data: InventoryFile): InventoryProblem[] {
  const app = data.app
  if (!app) return []
  const problems: InventoryProblem[] = []
  if (app.health !== undefined) {
    const written: Array<{path: FieldPath; value: string | undefined}> = [
      {path: ['lb', 'health_check'], value: data.lb?.health_check},
      ...ROLES.map((r) => ({path: ['roles', r, 'lb', 'health_check'], value: data.roles?.[r]?.lb?.health_check})),
      ...data.hosts.map((h, i) => ({path: ['hosts', i, 'lb', 'health_check'], value: h.lb?.health_check})),
    ]
    for (const w of written) {
      if (w.value !== undefined && w.value !== app.health)
        problems.push({
          path: w.path,
          message: `${showValue(w.value)} differs from app.health ${showValue(app.health)}: the load balancer checks the app's own health path; write it once, as app.health (remove ${formatPath(w.path)})`,
        })
    }
  }
  if (data.mysql?.app)
    problems.push({
      path: ['mysql', 'app'],
      message:
        "is the default app's database account, and app names your own app (there is no default app to use it): remove mysql.app and give your app an account of its own (mysql.endpoint still leads to the writer on 127.0.0.1)",
    })
  if (!data.hosts.some((h) => h.roles.includes('web')))
    problems.push({path: ['app'], message: 'the app runs on the web servers: no host has the web role'})
  return problems
}

/**
 * nginx's own ports on a web server (src/components/ports.ts; the inventory cannot import components): http and the
 * status page for its exporter on 127.0.0.1. A unit test (app.test.ts) checks they agree.
 */
export const NGINX_OWN_PORTS = {http: 80, nginxStatus: 8081} as const

/** nginx's own listeners on a web server: an upstream on the same host's loopback at one of them would be nginx itself. */
function checkAppPorts(inv: Inventory): InventoryProblem[] {
  const m = inv.app?.upstream && /^(?:127\.[0-9.]+|\[::1\]|localhost):([0-9]+)$/.exec(inv.app.upstream)
  if (!m) return []
  const p = Number(m[1])
  const web = inv.hosts.find(
    (h) => h.roles.includes('web') && [NGINX_OWN_PORTS.http, NGINX_OWN_PORTS.nginxStatus, h.lb.backendPort].includes(p),
  )
  return web
    ? [
        {
          path: ['app', 'upstream'],
          message: `${showValue(inv.app!.upstream)}: port ${p} on the loopback is nginx's own on ${web.name} (${p === NGINX_OWN_PORTS.nginxStatus ? 'its status page for the exporter' : p === NGINX_OWN_PORTS.http ? 'http' : 'https'}); run the app on another port`,
        },
      ]
    : []
}

/** The certificate source is one for the whole inventory (one certificate, one ACME account, one state directory). */
function checkInventoryWide(data: InventoryFile, inv: Inventory): InventoryProblem[] {
  return disagreements(inv.hosts.map((h) => h.tls.source)).map(({index, reference}) => {
    const [a, b] = [inv.hosts[index], inv.hosts[reference]]
    const [from, refFrom] = [sourceOrigin(data, index), sourceOrigin(data, reference)]
    const what =
      a.tls.source.type === b.tls.source.type
        ? `${a.name}'s certificate source (${from}) differs from ${b.name}'s (${refFrom}) in ${differingFields(a.tls.source, b.tls.source).join(', ')}`
        : `${a.name}'s certificate source is ${a.tls.source.type} (${from}) but ${b.name}'s is ${b.tls.source.type} (${refFrom})`
    return {
      path: ['hosts', index, 'tls', 'source'],
      message: `${what}: one certificate serves the whole site, so every host needs the same tls.source; set it once, at the top level`,
    }
  })
}

/**
 * Hosts whose value differs from the reference, the value most hosts have (the first host's on a tie); each comes
 * with the first host that has the reference value. Values are compared resolved (paths absolute, defaults in).
 */
function disagreements(values: object[]): Array<{index: number; reference: number}> {
  const groups: Array<{value: object; members: number[]}> = []
  values.forEach((value, i) => {
    const group = groups.find((g) => isDeepStrictEqual(defined(g.value), defined(value)))
    if (group) group.members.push(i)
    else groups.push({value, members: [i]})
  })
  const [first, ...others] = groups
  if (first === undefined || others.length === 0) return []
  const majority = others.reduce((best, g) => (g.members.length > best.members.length ? g : best), first)
  const reference = majority.members[0]
  const agree = new Set(majority.members)
  return reference === undefined ? [] : values.flatMap((_, index) => (agree.has(index) ? [] : [{index, reference}]))
}

/** The fields that are set: an absent optional field and one resolved to undefined are the same. */
const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))

/** As written in the inventory (snake_case). */
function differingFields(a: TlsSource, b: TlsSource): string[] {
  const [x, y] = [defined(a), defined(b)]
  return [...new Set([...Object.keys(x), ...Object.keys(y)])]
    .filter((k) => !isDeepStrictEqual(x[k], y[k]))
    .map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`))
}

/** Which layer a host's tls.source comes from: the host, the last of its roles that sets one, the top level or the default. */
function sourceOrigin(data: InventoryFile, index: number): string {
  const host = data.hosts[index]
  if (host?.tls?.source) return `set on the host`
  const role = [...(host?.roles ?? [])].reverse().find((r) => data.roles?.[r]?.tls?.source)
  if (role) return `from roles.${role}`
  if (data.tls?.source) return 'from the top level'
  return 'the default'
}

function dedupe(problems: InventoryProblem[]): InventoryProblem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${formatPath(p.path)}|${p.atKey}|${p.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function fromZodIssue(issue: z.core.$ZodIssue, locator: SourceLocator): InventoryProblem[] {
  const path: FieldPath = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))
  if (issue.code === 'unrecognized_keys') {
    // The key only, shortened; never its value (a file passed by mistake, e.g. a shadow file, must not be echoed).
    return issue.keys.map((key) => ({
      path,
      atKey: key,
      message: `unknown field ${showKey(key)} (check the spelling; see README "Inventory")`,
    }))
  }
  if (path.length === 0 && issue.code === 'invalid_type') {
    // Not a mapping at all (a certificate, a key or a text file passed as the inventory): its content is not shown.
    return [{path, message: 'the inventory must be a YAML mapping with site: and hosts: (see README "Inventory"); this file is not one'}]
  }
  const value = locator.valueAt(path)
  const got = value === undefined ? '' : ` (got ${showValue(value)})`
  const nonAscii = typeof value === 'string' ? describeNonAscii(value) : undefined
  let message = issue.message
  if (issue.code === 'invalid_type' && value === undefined && /received undefined/.test(message)) message = 'is required'
  return [{path, message: `${message}${got}${nonAscii ? `; ${nonAscii}` : ''}`}]
}

/** Rules that span fields: unique names and addresses, the database topology, the LB's backends. */
function crossCheck(raw: unknown): InventoryProblem[] {
  const problems: InventoryProblem[] = []
  const doc = isObj(raw) ? raw : {}
  // Unvalidated: a host that is not a mapping has no fields here (the schema reports it).
  const hosts = Array.isArray(doc.hosts) ? doc.hosts.map((h: unknown) => (isObj(h) ? h : {})) : []
  const byName = new Map<string, number>()
  const byAddress = new Map<string, number>()
  hosts.forEach((h, i) => {
    if (typeof h.name === 'string' && (ROLES as readonly string[]).includes(h.name)) {
      problems.push({
        path: ['hosts', i, 'name'],
        message: `${showValue(h.name)} is a role name (${ROLES.join(', ')}): --limit ${h.name} would mean both the host and the role; name the host otherwise (e.g. ${h.name}1)`,
      })
    }
    if (typeof h.name === 'string') {
      const first = byName.get(h.name)
      if (first === undefined) byName.set(h.name, i)
      else problems.push({path: ['hosts', i, 'name'], message: `duplicate host name ${showValue(h.name)} (also hosts[${first}])`})
    }
    if (typeof h.address === 'string' && isIP(h.address)) {
      const key = addressKey(h.address)
      const first = byAddress.get(key)
      if (first === undefined) byAddress.set(key, i)
      else
        problems.push({
          path: ['hosts', i, 'address'],
          message: `duplicate address ${showValue(h.address)} (also hosts[${first}]${key !== h.address ? `: both are ${key}` : ''})`,
        })
    }
  })
  const rolesOf = (h: Obj): string[] => (Array.isArray(h.roles) ? h.roles.filter((r: unknown) => typeof r === 'string') : [])
  const anyWeb = hosts.some((h) => rolesOf(h).includes('web'))
  hosts.forEach((h, i) => {
    if (rolesOf(h).includes('lb') && !anyWeb) {
      problems.push({path: ['hosts', i, 'roles'], message: 'an lb host needs web backends: no host has the web role'})
    }
  })
  if (hosts.filter((h) => rolesOf(h).includes('monitoring')).length > 1) {
    problems.push({path: ['hosts'], message: 'at most one host may have the monitoring role'})
  }
  problems.push(...checkDatabase(doc, hosts, byName, rolesOf))
  problems.push(...checkAppDatabase(doc, hosts, rolesOf))
  problems.push(...checkAdminNetworks(doc, hosts, rolesOf))
  return problems
}

/** Every host needs SSH allowed from somewhere: admin_cidrs at the top level, in one of its roles, or on the host. */
function checkAdminNetworks(doc: Obj, hosts: Array<Obj>, rolesOf: (h: Obj) => string[]): InventoryProblem[] {
  const hasAdmin = (layer: unknown) => isObj(layer) && isObj(layer.firewall) && layer.firewall.admin_cidrs !== undefined
  if (hasAdmin(doc)) return []
  const roles = isObj(doc.roles) ? doc.roles : {}
  return hosts.flatMap((h, i) =>
    hasAdmin(h) || rolesOf(h).some((r) => hasAdmin(roles[r]))
      ? []
      : [
          {
            path: ['hosts', i, 'firewall', 'admin_cidrs'],
            message: `no admin network for ${showValue(h.name)}: set firewall.admin_cidrs (top level, roles.<role> or the host) so SSH is allowed from somewhere you control`,
          },
        ],
  )
}

function checkDatabase(doc: Obj, hosts: Array<Obj>, byName: Map<string, number>, rolesOf: (h: Obj) => string[]): InventoryProblem[] {
  const problems: InventoryProblem[] = []
  const mysql = doc.mysql === undefined || doc.mysql === null ? undefined : isObj(doc.mysql) ? doc.mysql : {}
  const dbHosts = hosts.map((h, i) => ({h, i})).filter(({h}) => rolesOf(h).includes('db'))
  const primary = mysql?.primary
  const replicas: unknown[] = Array.isArray(mysql?.replicas) ? mysql.replicas : []
  if (Array.isArray(primary)) {
    if (primary.length > 1) {
      problems.push({
        path: ['mysql', 'primary'],
        message: `two primaries (${primary.map(String).join(', ')}): one writer only; list the others under mysql.replicas`,
      })
    }
  }
  const primaryName = Array.isArray(primary) ? (primary.length === 1 ? primary[0] : undefined) : primary
  const isDb = (name: unknown) => typeof name === 'string' && byName.has(name) && rolesOf(hosts[byName.get(name)!]!).includes('db')
  if (typeof primaryName === 'string' && !isDb(primaryName)) {
    problems.push({path: ['mysql', 'primary'], message: `${showValue(primaryName)} is not a host with the db role`})
  }
  if (replicas.length > 0 && primary === undefined) {
    problems.push({path: ['mysql', 'replicas'], message: 'replicas need a primary: set mysql.primary'})
  }
  // Sets and first places, not a search per entry: thousands of replicas would make it quadratic.
  const firstPlace = new Map<unknown, number>()
  replicas.forEach((r, j) => firstPlace.has(r) || firstPlace.set(r, j))
  const listed = new Set<unknown>([...(Array.isArray(primary) ? primary : [primary]), ...replicas])
  replicas.forEach((r, j) => {
    if (r === primaryName) problems.push({path: ['mysql', 'replicas', j], message: `${showValue(r)} is the primary; a host cannot be both`})
    else if (typeof r === 'string' && !isDb(r))
      problems.push({path: ['mysql', 'replicas', j], message: `${showValue(r)} is not a host with the db role`})
    if (firstPlace.get(r) !== j) problems.push({path: ['mysql', 'replicas', j], message: `${showValue(r)} is listed twice`})
  })
  if (dbHosts.length > 0 && mysql === undefined) {
    problems.push({path: ['hosts', dbHosts[0]!.i, 'roles'], message: 'db hosts need a mysql section naming the primary'})
  } else if (mysql !== undefined) {
    for (const {h, i} of dbHosts) {
      if (typeof h.name === 'string' && !listed.has(h.name)) {
        problems.push({path: ['hosts', i, 'roles'], message: `db host ${showValue(h.name)} is neither mysql.primary nor in mysql.replicas`})
      }
    }
    const galera = mysql.topology === 'galera'
    if (!galera && replicas.length > 0 && mysql.replication_password === undefined) {
      problems.push({path: ['mysql'], message: 'replication needs replication_password: {env: NAME} or {file: PATH}'})
    }
    if (galera) problems.push(...galeraProblems(mysql, [...listed].filter((x) => typeof x === 'string').length, byName, hosts, rolesOf))
    else if (mysql.arbitrator !== undefined)
      problems.push({path: ['mysql', 'arbitrator'], message: 'an arbitrator is for topology: galera only'})
  }
  return problems
}

/**
 * topology: galera: MariaDB only; at least three members, or two and an arbitrator (a quorum survives one failure);
 * the arbitrator a host of its own without the db role.
 */
function galeraProblems(
  mysql: Obj,
  members: number,
  byName: Map<string, number>,
  hosts: Obj[],
  rolesOf: (h: Obj) => string[],
): InventoryProblem[] {
  const problems: InventoryProblem[] = []
  if (mysql.engine === 'mysql')
    problems.push({path: ['mysql', 'engine'], message: 'galera needs engine: mariadb (Debian ships Galera for MariaDB)'})
  const arb = mysql.arbitrator
  if (arb !== undefined) {
    const i = typeof arb === 'string' ? byName.get(arb) : undefined
    if (i === undefined) problems.push({path: ['mysql', 'arbitrator'], message: `${showValue(arb)} is not a host in this inventory`})
    else if (rolesOf(hosts[i]!).includes('db'))
      problems.push({
        path: ['mysql', 'arbitrator'],
        message: `${showValue(arb)} has the db role: the arbitrator must be a host without a database`,
      })
  }
  const votes = members + (arb === undefined ? 0 : 1)
  if (votes < 3)
    problems.push({
      path: ['mysql'],
      message: `galera needs at least three members, or two and an arbitrator (mysql.arbitrator), to keep a quorum when one fails: this has ${members} member${members === 1 ? '' : 's'}${arb === undefined ? '' : ' and an arbitrator'}`,
    })
  return problems
}

/** mysql.app: the default app's account lives on the primary, for web servers, under a name of its own. */
function checkAppDatabase(doc: Obj, hosts: Array<Obj>, rolesOf: (h: Obj) => string[]): InventoryProblem[] {
  const mysql = isObj(doc.mysql) ? doc.mysql : undefined
  if (!mysql || !isObj(mysql.app)) return []
  const problems: InventoryProblem[] = []
  if (mysql.primary === undefined) problems.push({path: ['mysql', 'app'], message: 'the app database needs a primary: set mysql.primary'})
  if (!hosts.some((h) => rolesOf(h).includes('web')))
    problems.push({path: ['mysql', 'app'], message: 'the app database is for the web servers: no host has the web role'})
  const user = mysql.app.user ?? 'foobar_app'
  if (user === (mysql.replication_user ?? 'repl'))
    problems.push({path: ['mysql', 'app', 'user'], message: `${showValue(user)} is the replication user: give the app a user of its own`})
  return problems
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Replaced whole, never merged: a certificate source, and a secret reference ({env} over {file} is not both). */
const WHOLE = new Set(['source', 'url', 'password'])

/** Objects merge key by key; lists, scalars, the TLS certificate source and secret references are replaced whole. */
export function mergeLayers(...layers: Array<Layer | undefined>): Obj {
  const out: Obj = {}
  for (const l of layers) if (l) mergeInto(out, l)
  return out
}

function mergeInto(target: Obj, source: Obj): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue
    const current = target[key]
    if (!WHOLE.has(key) && isObj(value) && isObj(current)) mergeInto(current, value)
    else target[key] = isObj(value) && !WHOLE.has(key) ? structuredClone(value) : value
  }
}
