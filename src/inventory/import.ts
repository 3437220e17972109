import picomatch from 'picomatch'
import {parse as parseYaml} from 'yaml'
import {UserError} from '../util/errors.js'
import {ROLES, type Role} from './index.js'

/**
 * Pure: an existing fleet's description (an Ansible inventory, INI or YAML, or the Host entries of ~/.ssh/config)
 * turned into a draft of foobar's inventory: host names, addresses, SSH user and port, roles. Group names become
 * roles by name (`webservers` → web) or by `--map PATTERN=ROLE[+ROLE]`; what cannot be mapped is said, not guessed.
 */

export interface DraftHost {
  name: string
  /** The address to connect to: ansible_host / HostName, else the name itself. */
  address: string
  roles: Role[]
  user?: string
  port?: number
}

export interface Draft {
  hosts: DraftHost[]
  /** What the import left out, and why (a group with no role, a host with no role, an unsupported entry). */
  notes: string[]
}

/** Group (or host) names that mean a role without being told. */
const ROLE_NAMES: Record<Role, string[]> = {
  lb: ['lb', 'lbs', 'loadbalancer', 'loadbalancers', 'load_balancers', 'haproxy', 'proxy', 'proxies'],
  web: ['web', 'webs', 'webserver', 'webservers', 'web_servers', 'www', 'nginx', 'app', 'apps', 'appservers'],
  db: ['db', 'dbs', 'database', 'databases', 'dbservers', 'db_servers', 'mysql', 'mariadb'],
  monitoring: ['monitoring', 'monitor', 'prometheus', 'metrics'],
}

export interface RoleMap {
  pattern: string
  roles: Role[]
}

/** `--map 'web*=web'`, `--map legacy=web+db`: a picomatch pattern over group (or host) names, then roles. */
export function parseRoleMaps(values: string[]): RoleMap[] {
  return values.map((v) => {
    const eq = v.lastIndexOf('=')
    const pattern = v.slice(0, eq)
    const roles = v
      .slice(eq + 1)
      .split(/[+,]/)
      .filter(Boolean)
    const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r))
    if (eq <= 0 || roles.length === 0 || bad.length > 0)
      throw new UserError(
        `--map ${v}: expected PATTERN=ROLE[+ROLE] with roles among ${ROLES.join(', ')}`,
        [],
        ["--map 'webservers=web'", "--map 'legacy*=web+db'"],
      )
    return {pattern, roles: roles as Role[]}
  })
}

/** The roles a group (or host) name stands for: the maps first (all that match), else the known names. */
export function rolesOf(name: string, maps: RoleMap[]): Role[] {
  const mapped = maps.filter((m) => picomatch.isMatch(name, m.pattern)).flatMap((m) => m.roles)
  if (mapped.length > 0) return [...new Set(mapped)]
  const lower = name.toLowerCase()
  return ROLES.filter((r) => ROLE_NAMES[r].includes(lower))
}

/* ---------------------------------------------------------------------------------------------------------------- */

/** An Ansible inventory as groups: each group's own hosts (with their vars), child groups and group vars. */
export interface AnsibleInventory {
  groups: Map<string, {hosts: Map<string, Record<string, string>>; children: string[]; vars: Record<string, string>}>
}

function group(inv: AnsibleInventory, name: string) {
  let g = inv.groups.get(name)
  if (!g) inv.groups.set(name, (g = {hosts: new Map(), children: [], vars: {}}))
  return g
}

/** `key=value key2="quoted value"` (Ansible's INI host line after the name). */
function keyValues(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {}
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|'([^']*)'|(\S*))/y
  let rest = text.trim()
  while (rest.length > 0) {
    re.lastIndex = 0
    const m = re.exec(rest)
    if (!m) throw new UserError(`${where}: cannot read "${rest.slice(0, 60)}" (expected key=value)`)
    out[m[1]!] = m[3] ?? m[4] ?? m[5] ?? ''
    rest = rest.slice(m[0].length).trim()
  }
  return out
}

/** Ansible's INI format: `[group]` host lines, `[group:children]`, `[group:vars]`; ranges like web[1:3] expanded. */
export function parseAnsibleIni(text: string, file: string): AnsibleInventory {
  const inv: AnsibleInventory = {groups: new Map()}
  let section = {name: 'ungrouped', kind: 'hosts' as 'hosts' | 'children' | 'vars'}
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`
    const line = raw.replace(/^\s+|\s+$/g, '')
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return
    const head = /^\[([^\]:]+)(?::(children|vars))?\]$/.exec(line)
    if (head) {
      section = {name: head[1]!, kind: (head[2] as 'children' | 'vars' | undefined) ?? 'hosts'}
      group(inv, section.name)
      return
    }
    const g = group(inv, section.name)
    if (section.kind === 'children') g.children.push(line.split(/\s+/)[0]!)
    else if (section.kind === 'vars') Object.assign(g.vars, keyValues(line, where))
    else {
      const [pattern, ...rest] = line.split(/\s+/)
      const vars = keyValues(rest.join(' '), where)
      for (const name of expandRange(pattern!, where)) g.hosts.set(name, vars)
    }
  })
  return inv
}

/** `web[1:3]` → web1, web2, web3; `db[01:02]` keeps the width; `[a:c]` letters. */
function expandRange(pattern: string, where: string): string[] {
  const m = /^(.*)\[([0-9a-z]+):([0-9a-z]+)\](.*)$/.exec(pattern)
  if (!m) return [pattern]
  const [, pre, from, to, post] = m as unknown as [string, string, string, string, string]
  const out: string[] = []
  if (/^\d+$/.test(from) && /^\d+$/.test(to)) {
    for (let n = Number(from); n <= Number(to); n++) out.push(`${pre}${String(n).padStart(from.length, '0')}${post}`)
  } else if (/^[a-z]$/.test(from) && /^[a-z]$/.test(to)) {
    for (let c = from.charCodeAt(0); c <= to.charCodeAt(0); c++) out.push(`${pre}${String.fromCharCode(c)}${post}`)
  } else throw new UserError(`${where}: cannot expand the host range ${pattern}`)
  if (out.length === 0 || out.length > 1000) throw new UserError(`${where}: the host range ${pattern} gives ${out.length} hosts`)
  return out.flatMap((n) => expandRange(n, where))
}

/** Ansible's YAML format: `all: {hosts, vars, children: {group: {hosts, vars, children}}}`. */
export function parseAnsibleYaml(text: string, file: string): AnsibleInventory {
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (error) {
    throw new UserError(`${file}: not YAML: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!doc || typeof doc !== 'object') throw new UserError(`${file}: not an Ansible inventory (expected groups at the top, e.g. all:)`)
  const inv: AnsibleInventory = {groups: new Map()}
  const str = (v: unknown) => (v === null || v === undefined ? '' : String(v))
  const visit = (name: string, node: unknown) => {
    const g = group(inv, name)
    if (!node || typeof node !== 'object') return
    const n = node as {hosts?: Record<string, unknown>; vars?: Record<string, unknown>; children?: Record<string, unknown>}
    for (const [h, vars] of Object.entries(n.hosts ?? {})) {
      const v = vars && typeof vars === 'object' ? Object.fromEntries(Object.entries(vars).map(([k, x]) => [k, str(x)])) : {}
      for (const each of expandRange(h, `${file}: ${name}`)) g.hosts.set(each, {...(g.hosts.get(each) ?? {}), ...v})
    }
    Object.assign(g.vars, Object.fromEntries(Object.entries(n.vars ?? {}).map(([k, x]) => [k, str(x)])))
    for (const [child, sub] of Object.entries(n.children ?? {})) {
      if (!g.children.includes(child)) g.children.push(child)
      visit(child, sub)
    }
  }
  for (const [name, node] of Object.entries(doc as Record<string, unknown>)) visit(name, node)
  return inv
}

/** Every group a host is in, directly or through children; each host's vars (group vars below host vars). */
export function draftFromAnsible(inv: AnsibleInventory, maps: RoleMap[]): Draft {
  const notes: string[] = []
  const groupsOf = new Map<string, string[]>()
  const varsOf = new Map<string, Record<string, string>>()
  const seen = new Set<string>()
  const walk = (name: string, trail: string[], inherited: Record<string, string>) => {
    const g = inv.groups.get(name)
    if (!g) return
    if (trail.includes(name)) throw new UserError(`the Ansible groups form a cycle: ${[...trail, name].join(' → ')}`)
    const vars = {...inherited, ...g.vars}
    for (const [host, hv] of g.hosts) {
      groupsOf.set(host, [...new Set([...(groupsOf.get(host) ?? []), ...trail, name])])
      varsOf.set(host, {...vars, ...(varsOf.get(host) ?? {}), ...hv})
    }
    for (const c of g.children) walk(c, [...trail, name], vars)
  }
  // From the top: groups that are nobody's child (all, and groups listed on their own).
  const children = new Set([...inv.groups.values()].flatMap((g) => g.children))
  for (const name of inv.groups.keys()) if (!children.has(name)) walk(name, [], {})
  const hosts: DraftHost[] = []
  const unmapped = new Set<string>()
  for (const [name, groups] of groupsOf) {
    if (seen.has(name)) continue
    seen.add(name)
    const vars = varsOf.get(name) ?? {}
    const roles = new Set<Role>()
    for (const g of groups) {
      const r = rolesOf(g, maps)
      if (r.length === 0 && g !== 'all' && g !== 'ungrouped') unmapped.add(g)
      r.forEach((x) => roles.add(x))
    }
    if (roles.size === 0) {
      notes.push(`${name}: left out — none of its groups (${groups.join(', ')}) is a role; --map GROUP=ROLE includes it`)
      continue
    }
    const port = vars.ansible_port ?? vars.ansible_ssh_port
    hosts.push({
      name,
      address: vars.ansible_host ?? vars.ansible_ssh_host ?? name,
      roles: ROLES.filter((r) => roles.has(r)),
      ...(vars.ansible_user || vars.ansible_ssh_user ? {user: vars.ansible_user ?? vars.ansible_ssh_user} : {}),
      ...(port ? {port: Number(port)} : {}),
    })
  }
  for (const g of unmapped) notes.push(`group ${g}: no role (not a known role name and no --map for it)`)
  return {hosts, notes}
}

/** ~/.ssh/config's Host entries without wildcards: HostName, User, Port; roles from --map over the host names. */
export function draftFromSshConfig(text: string, maps: RoleMap[]): Draft {
  const notes: string[] = []
  const entries: Array<{names: string[]; opts: Record<string, string>}> = []
  let current: {names: string[]; opts: Record<string, string>} | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(\S+)\s*(?:=\s*|\s+)(.*)$/.exec(line)
    if (!m) continue
    const key = m[1]!.toLowerCase()
    if (key === 'host') {
      current = {names: m[2]!.split(/\s+/).filter((n) => !/[*?!]/.test(n)), opts: {}}
      entries.push(current)
    } else if (key === 'match') current = undefined
    else if (current && !(key in current.opts)) current.opts[key] = m[2]!.trim()
  }
  const hosts: DraftHost[] = []
  for (const e of entries) {
    for (const name of e.names) {
      const roles = rolesOf(name, maps)
      if (roles.length === 0) {
        notes.push(`${name}: left out — no role (--map '${name}=web' or a pattern over the names includes it)`)
        continue
      }
      hosts.push({
        name,
        address: e.opts.hostname ?? name,
        roles,
        ...(e.opts.user ? {user: e.opts.user} : {}),
        ...(e.opts.port ? {port: Number(e.opts.port)} : {}),
      })
    }
  }
  return {hosts, notes}
}
