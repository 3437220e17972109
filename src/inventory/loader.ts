import {readFile} from 'node:fs/promises'
import {isIP} from 'node:net'
import {dirname, isAbsolute, resolve} from 'node:path'
import {homedir} from 'node:os'
import {LineCounter, parseDocument} from 'yaml'
import type {z} from 'zod'
import {UserError} from '../cli/errors.js'
import {DEFAULTS} from './defaults.js'
import {type FieldPath, InventoryError, type InventoryProblem, SourceLocator, formatPath, showValue} from './errors.js'
import type {DbMembership, HardeningSettings, Host, Inventory, MysqlSettings, PortRule, TlsSource} from './model.js'
import type {SecretRef} from './primitives.js'
import {type InventoryFile, LAYER_KEYS, type Layer, type Role, inventorySchema} from './schema.js'

/** Reads, validates and resolves an inventory file. Throws InventoryError (exit 2) listing every problem. */
export async function loadInventory(file: string): Promise<Inventory> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UserError(`${file}: cannot read the inventory (${code ?? String(error)})`, [], [
      'Pass the inventory with -i FILE or set FOOBAR_INVENTORY.',
    ])
  }
  return parseInventory(text, path)
}

/** Pure: inventory text -> resolved inventory. `file` is used for messages and relative paths. */
export function parseInventory(text: string, file: string): Inventory {
  const lines = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lines, prettyErrors: false, uniqueKeys: true})
  const locator = new SourceLocator(file, doc, lines)
  if (doc.errors.length > 0) {
    throw new InventoryError(
      file,
      doc.errors.map((e) => {
        const {line, col} = lines.linePos(e.pos[0])
        return {location: `${file}:${line}:${col}`, field: 'YAML', message: e.message.split('\n')[0] ?? e.message}
      }),
    )
  }
  const raw: unknown = doc.toJS()
  const parsed = inventorySchema.safeParse(raw)
  const problems: InventoryProblem[] = parsed.success ? [] : parsed.error.issues.flatMap((i) => fromZodIssue(i, locator))
  problems.push(...crossCheck(raw))
  if (problems.length > 0 || !parsed.success) {
    throw new InventoryError(
      file,
      dedupe(problems).map((p) => ({location: locator.locate(p.path, p.atKey), field: formatPath(p.atKey ? [...p.path, p.atKey] : p.path), message: p.message})),
    )
  }
  return resolveInventory(parsed.data, file)
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
  const path = issue.path as FieldPath
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({path, atKey: key, message: `unknown field ${showValue(key)} (check the spelling; see README "Inventory")`}))
  }
  const value = locator.valueAt(path)
  const got = value === undefined ? '' : ` (got ${showValue(value)})`
  let message = issue.message
  if (issue.code === 'invalid_type' && value === undefined && /received undefined/.test(message)) message = 'is required'
  return [{path, message: `${message}${got}`}]
}

/** Rules that span fields: unique names and addresses, the database topology, the LB's backends. */
function crossCheck(raw: unknown): InventoryProblem[] {
  const problems: InventoryProblem[] = []
  const doc = (raw ?? {}) as Record<string, unknown>
  const hosts = Array.isArray(doc.hosts) ? (doc.hosts as Array<Record<string, unknown>>) : []
  const byName = new Map<string, number>()
  const byAddress = new Map<string, number>()
  hosts.forEach((h, i) => {
    if (typeof h?.name === 'string') {
      const first = byName.get(h.name)
      if (first === undefined) byName.set(h.name, i)
      else problems.push({path: ['hosts', i, 'name'], message: `duplicate host name ${showValue(h.name)} (also hosts[${first}])`})
    }
    if (typeof h?.address === 'string' && isIP(h.address)) {
      const key = normaliseAddress(h.address)
      const first = byAddress.get(key)
      if (first === undefined) byAddress.set(key, i)
      else problems.push({path: ['hosts', i, 'address'], message: `duplicate address ${showValue(h.address)} (also hosts[${first}])`})
    }
  })
  const rolesOf = (h: Record<string, unknown>): string[] => (Array.isArray(h?.roles) ? (h.roles as string[]) : [])
  const hasRole = (r: string) => hosts.some((h) => rolesOf(h).includes(r))
  hosts.forEach((h, i) => {
    if (rolesOf(h).includes('lb') && !hasRole('web')) {
      problems.push({path: ['hosts', i, 'roles'], message: 'an lb host needs web backends: no host has the web role'})
    }
  })
  if (hosts.filter((h) => rolesOf(h).includes('monitoring')).length > 1) {
    problems.push({path: ['hosts'], message: 'at most one host may have the monitoring role'})
  }
  problems.push(...checkDatabase(doc, hosts, byName, rolesOf))
  problems.push(...checkAdminNetworks(doc, hosts, rolesOf))
  return problems
}

/** Every host needs SSH allowed from somewhere: admin_cidrs at the top level, in one of its roles, or on the host. */
function checkAdminNetworks(doc: Record<string, unknown>, hosts: Array<Record<string, unknown>>, rolesOf: (h: Record<string, unknown>) => string[]): InventoryProblem[] {
  const hasAdmin = (layer: unknown) => isObj(layer) && isObj(layer.firewall) && layer.firewall.admin_cidrs !== undefined
  if (hasAdmin(doc)) return []
  const roles = isObj(doc.roles) ? doc.roles : {}
  return hosts.flatMap((h, i) =>
    hasAdmin(h) || rolesOf(h).some((r) => hasAdmin(roles[r]))
      ? []
      : [{path: ['hosts', i, 'firewall', 'admin_cidrs'], message: `no admin network for ${showValue(h?.name)}: set firewall.admin_cidrs (top level, roles.<role> or the host) so SSH is allowed from somewhere you control`}],
  )
}

function checkDatabase(
  doc: Record<string, unknown>,
  hosts: Array<Record<string, unknown>>,
  byName: Map<string, number>,
  rolesOf: (h: Record<string, unknown>) => string[],
): InventoryProblem[] {
  const problems: InventoryProblem[] = []
  const mysql = (doc.mysql ?? undefined) as Record<string, unknown> | undefined
  const dbHosts = hosts.map((h, i) => ({h, i})).filter(({h}) => rolesOf(h).includes('db'))
  const primary = mysql?.primary
  const replicas = Array.isArray(mysql?.replicas) ? (mysql.replicas as unknown[]) : []
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
  replicas.forEach((r, j) => {
    if (r === primaryName) problems.push({path: ['mysql', 'replicas', j], message: `${showValue(r)} is the primary; a host cannot be both`})
    else if (typeof r === 'string' && !isDb(r)) problems.push({path: ['mysql', 'replicas', j], message: `${showValue(r)} is not a host with the db role`})
    if (replicas.indexOf(r) !== j) problems.push({path: ['mysql', 'replicas', j], message: `${showValue(r)} is listed twice`})
  })
  if (dbHosts.length > 0 && mysql === undefined) {
    problems.push({path: ['hosts', dbHosts[0]!.i, 'roles'], message: 'db hosts need a mysql section naming the primary'})
  } else if (mysql !== undefined) {
    for (const {h, i} of dbHosts) {
      const primaries = Array.isArray(primary) ? primary : [primary]
      if (typeof h.name === 'string' && !primaries.includes(h.name) && !replicas.includes(h.name)) {
        problems.push({path: ['hosts', i, 'roles'], message: `db host ${showValue(h.name)} is neither mysql.primary nor in mysql.replicas`})
      }
    }
    if (replicas.length > 0 && mysql.replication_password === undefined) {
      problems.push({path: ['mysql'], message: 'replication needs replication_password: {env: NAME} or {file: PATH}'})
    }
  }
  return problems
}

/** One spelling per address: `2001:DB8:0:0::1` and `2001:db8::1` are the same host (the URL parser canonicalises v6). */
function normaliseAddress(address: string): string {
  return isIP(address) === 6 ? new URL(`http://[${address.split('%')[0]}]`).hostname : address
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Replaced whole, never merged: a certificate source, and a secret reference ({env} over {file} is not both). */
const WHOLE = new Set(['source', 'url'])

/** Objects merge key by key; lists, scalars, the TLS certificate source and secret references are replaced whole. */
export function mergeLayers(...layers: Array<Layer | undefined>): Obj {
  const out: Obj = {}
  for (const l of layers) if (l) mergeInto(out, l as Obj)
  return out
}

function mergeInto(target: Obj, source: Obj): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue
    if (!WHOLE.has(key) && isObj(value) && isObj(target[key])) mergeInto(target[key] as Obj, value)
    else target[key] = isObj(value) && !WHOLE.has(key) ? structuredClone(value) : value
  }
}

function resolveInventory(data: InventoryFile, file: string): Inventory {
  const base = dirname(file)
  const localFile = (p: string | undefined) => (p === undefined ? undefined : expandPath(p, base))
  const top: Layer = Object.fromEntries(LAYER_KEYS.map((k) => [k, data[k]])) as Layer
  const dbIds = new Map<string, DbMembership>()
  const primary = Array.isArray(data.mysql?.primary) ? data.mysql?.primary[0] : data.mysql?.primary
  // server_id follows the host's place in the inventory, not its role: a promotion must not renumber servers.
  const serverId = (name: string) => data.hosts.findIndex((h) => h.name === name) + 1
  if (primary) dbIds.set(primary, {role: 'primary', serverId: serverId(primary)})
  data.mysql?.replicas.forEach((r) => dbIds.set(r, {role: 'replica', serverId: serverId(r)}))

  const hosts: Host[] = data.hosts.map((h) => {
    const roleLayers = h.roles.map((r: Role) => data.roles?.[r])
    const hostLayer = Object.fromEntries(LAYER_KEYS.map((k) => [k, h[k]])) as Layer
    const m = mergeLayers(DEFAULTS as Layer, top, ...roleLayers, hostLayer) as Required<{[K in keyof Layer]-?: Obj}>
    const ssh = m.ssh as Obj
    const fw = m.firewall as Obj
    const tls = m.tls as Obj
    const lb = m.lb as Obj
    const mon = m.monitoring as Obj
    const source = tls.source as Obj
    const hsts = tls.hsts as Obj
    const extra = (fw.extra_ports ?? {}) as Partial<Record<Role, Array<Obj>>>
    return {
      name: h.name,
      address: h.address,
      family: isIP(h.address) === 6 ? 6 : 4,
      roles: [...new Set(h.roles)].sort(),
      ssh: {
        user: ssh.user as string,
        port: ssh.port as number,
        identityFile: localFile(ssh.identity_file as string | undefined),
        sudo: ssh.sudo as boolean,
        jumpHost: ssh.jump_host as string | undefined,
        knownHosts: localFile(ssh.known_hosts as string | undefined),
        connectTimeout: ssh.connect_timeout as number,
      },
      firewall: {
        backend: fw.backend as 'ufw' | 'iptables',
        adminCidrs: (fw.admin_cidrs as string[] | undefined) ?? [],
        extraPorts: Object.fromEntries(
          Object.entries(extra).map(([r, rules]) => [
            r,
            (rules ?? []).map((x): PortRule => ({port: x.port as number, proto: (x.proto as 'tcp' | 'udp') ?? 'tcp', from: (x.from as string[]) ?? [], comment: x.comment as string | undefined})),
          ]),
        ),
        ipv6: fw.ipv6 as boolean,
        revertAfter: fw.revert_after as number,
        allowControlAddress: fw.allow_control_address as boolean,
      },
      tls: {
        profile: tls.profile as 'intermediate' | 'modern',
        hsts: {enabled: hsts.enabled as boolean, maxAge: hsts.max_age as number, includeSubdomains: hsts.include_subdomains as boolean, preload: hsts.preload as boolean},
        source: resolveSource(source, data.site.email, localFile),
      },
      lb: {balance: lb.balance as Host['lb']['balance'], healthCheck: lb.health_check as string, reencrypt: lb.reencrypt as boolean, backendPort: lb.backend_port as number},
      monitoring: {
        enabled: mon.enabled as boolean,
        sources: (mon.sources as string[]) ?? [],
        logService: isObj(mon.log_service) ? {url: secretPath(mon.log_service.url as SecretRef, localFile)} : undefined,
      },
      apt: {proxy: (m.apt as Obj).proxy as string | undefined},
      hardening: resolveHardening(m.hardening as Obj),
      db: dbIds.get(h.name),
    }
  })
  let mysql: MysqlSettings | undefined
  if (data.mysql) {
    mysql = {
      engine: data.mysql.engine,
      primary,
      replicas: data.mysql.replicas,
      replicationUser: data.mysql.replication_user,
      replicationPassword: secretPath(data.mysql.replication_password, localFile),
      monitorPassword: secretPath(data.mysql.monitor_password, localFile),
      port: data.mysql.port,
    }
  }
  return {file, site: {domain: data.site.domain, aliases: [...data.site.aliases], email: data.site.email}, mysql, hosts}
}

function resolveHardening(h: Obj): HardeningSettings {
  const t = h.thresholds as Obj
  return {
    skip: {...(h.skip as HardeningSettings['skip'])},
    allowUsers: [...(h.allow_users as string[])],
    allowGroups: [...(h.allow_groups as string[])],
    revertAfter: h.revert_after as number,
    maxSessions: h.max_sessions as number,
    shellTimeout: h.shell_timeout as number,
    thresholds: {sshAuditFail: t.ssh_audit_fail as number, sshAuditWarn: t.ssh_audit_warn as number, lynisMin: t.lynis_min as number},
  }
}

function secretPath<T extends {env: string} | {file: string} | undefined>(ref: T, localFile: (p: string) => string | undefined): T {
  if (ref && 'file' in ref) return {file: localFile(ref.file)} as T
  return ref
}

function resolveSource(source: Obj, siteEmail: string, localFile: (p: string | undefined) => string | undefined): TlsSource {
  switch (source.type) {
    case 'acme':
      return {
        type: 'acme',
        directory: source.directory as string,
        email: (source.email as string | undefined) ?? siteEmail,
        challenge: (source.challenge as 'http-01' | 'dns-01' | undefined) ?? 'http-01',
        dnsHook: localFile(source.dns_hook as string | undefined),
        keyType: (source.key_type as 'ecdsa' | 'rsa' | undefined) ?? 'ecdsa',
        apiCaFile: localFile(source.api_ca_file as string | undefined),
        chainCaFile: localFile(source.chain_ca_file as string | undefined),
        stateDir: localFile(source.state_dir as string | undefined),
      }
    case 'files':
      return {type: 'files', cert: localFile(source.cert as string)!, key: localFile(source.key as string)!, caFile: localFile(source.ca_file as string | undefined)}
    default:
      return {type: 'self-signed', stateDir: localFile(source.state_dir as string | undefined)}
  }
}

/** `~/x` -> home, relative -> next to the inventory file. */
export function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2))
  return isAbsolute(p) ? p : resolve(base, p)
}
