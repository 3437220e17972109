import {shq} from '../util/shell.js'

/** What the plan needs to know about a host, gathered in one round trip. */
export interface FileFact {
  exists: boolean
  mode?: number
  owner?: string
  group?: string
  sha256?: string
  /** Present for small non-secret files, for diffs. */
  content?: string
}

export interface HostFacts {
  os: string
  virt: string
  packages: Record<string, 'installed' | 'absent'>
  /** The version dpkg knows of each package asked for in `versions` (absent: dpkg knows none). */
  versions?: Record<string, string>
  files: Record<string, FileFact>
  services: Record<string, {enabled: string; active: string}>
  /** Reloads (and pending live steps) recorded by an earlier run that did not finish them. */
  pendingReloads: string[]
  /** Each component's live-state lines, as its own script printed them (the component parses them). */
  live: Record<string, string[]>
}

export const PENDING_FILE = '/var/lib/foobar/pending-reloads'
/**
 * When foobar last changed the host: seconds since the epoch by the host's own clock, written before a host's
 * first change in a run and again when its apply ends (done, failed or rolled back). Whatever judges the host from
 * an earlier look (a Lynis report) must be younger than this.
 */
export const LAST_APPLY = '/var/lib/foobar/last-apply'
const MAX_CONTENT = 256 * 1024

export interface FactQuery {
  packages: string[]
  /** Packages whose version the plan compares (the pinned ones). */
  versions?: string[]
  files: Array<{path: string; secret?: boolean}>
  services: string[]
  /** The components' live-state scripts: their output goes back to each component untouched. */
  live?: Array<{component: string; script: string}>
}

/** One shell script whose output parseFacts reads. Every value is quoted. */
export function factsScript(q: FactQuery): string {
  const lines = [
    'echo "@@os $( . /etc/os-release 2>/dev/null; echo "$ID $VERSION_ID")"',
    'echo "@@virt $(systemd-detect-virt 2>/dev/null || true)"',
  ]
  if (q.packages.length) {
    lines.push(`dpkg-query -W -f='@@pkg \${Package} \${db:Status-Abbrev}\\n' ${q.packages.map(shq).join(' ')} 2>/dev/null || true`)
  }
  if (q.versions?.length) {
    lines.push(`dpkg-query -W -f='@@ver \${Package} \${Version}\\n' ${q.versions.map(shq).join(' ')} 2>/dev/null || true`)
  }
  for (const f of q.files) {
    const p = shq(f.path)
    const content = f.secret ? '' : `; [ "$(stat -c %s ${p})" -le ${MAX_CONTENT} ] && echo "@@content $(base64 -w0 < ${p})"`
    lines.push(
      `if [ -f ${p} ] && [ ! -L ${p} ]; then echo "@@file ${f.path} $(stat -c '%a %U %G' ${p}) $(sha256sum < ${p} | cut -d' ' -f1)"${content}; ` +
        `elif [ -e ${p} ] || [ -L ${p} ]; then echo "@@other ${f.path}"; else echo "@@nofile ${f.path}"; fi`,
    )
  }
  for (const s of q.services) {
    const u = shq(s)
    lines.push(`echo "@@svc ${s} $(systemctl is-enabled ${u} 2>/dev/null || true) $(systemctl is-active ${u} 2>/dev/null || true)"`)
  }
  lines.push(`[ -f ${PENDING_FILE} ] && sed 's/^/@@pending /' ${PENDING_FILE} || true`)
  for (const l of q.live ?? []) {
    if (!/^[a-z][a-z0-9-]*$/.test(l.component))
      throw new Error(`component name ${JSON.stringify(l.component)}: lowercase letters, digits, -`)
    // Tagged by the engine, so a component's lines can never be mistaken for another's (or for a core fact).
    lines.push(`{\n${l.script}\ntrue\n} 2>/dev/null | sed 's/^/@@live ${l.component} /'`)
  }
  return lines.join('\n')
}

/**
 * The components' discovery scripts (read before rendering), in one round trip; each line tagged with its
 * component by the engine, as the live-state lines are.
 */
export function discoveryScript(parts: Array<{component: string; script: string}>): string {
  return parts
    .map((p) => {
      if (!/^[a-z][a-z0-9-]*$/.test(p.component))
        throw new Error(`component name ${JSON.stringify(p.component)}: lowercase letters, digits, -`)
      return `{\n${p.script}\ntrue\n} 2>/dev/null | sed 's/^/@@disc ${p.component} /'`
    })
    .join('\n')
}

/** Pure parser of discoveryScript's output: component -> its lines (every component asked has an entry). */
export function parseDiscovery(output: string, parts: Array<{component: string}>): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(parts.map((p) => [p.component, [] as string[]]))
  for (const line of output.split('\n')) {
    const [tag, component, ...value] = line.split(' ')
    if (tag === '@@disc' && component && out[component]) out[component].push(value.join(' '))
  }
  return out
}

/** Pure parser of factsScript's output. */
export function parseFacts(output: string, q: FactQuery): HostFacts {
  const facts: HostFacts & {versions: Record<string, string>} = {
    os: '',
    virt: '',
    packages: {},
    versions: {},
    files: {},
    services: {},
    pendingReloads: [],
    live: {},
  }
  for (const l of q.live ?? []) facts.live[l.component] = []
  for (const p of q.packages) facts.packages[p] = 'absent'
  let last: FileFact | undefined
  for (const line of output.split('\n')) {
    const [tag, ...rest] = line.split(' ')
    switch (tag) {
      case '@@os':
        facts.os = rest.join(' ').trim()
        break
      case '@@virt':
        facts.virt = rest.join(' ').trim() || 'none'
        break
      case '@@pkg': {
        const [name, status] = rest
        // "ii" = installed; anything else (rc, un, iF, ...) needs an install.
        if (name) facts.packages[name] = status === 'ii' ? 'installed' : 'absent'
        break
      }
      case '@@ver': {
        const [name, version] = rest
        if (name && version) facts.versions[name] = version
        break
      }
      case '@@file': {
        const [path, mode, owner, group, sha] = rest
        last = {exists: true, mode: parseInt(mode ?? '0', 8), owner, group, sha256: sha}
        facts.files[path!] = last
        break
      }
      case '@@content':
        if (last) last.content = Buffer.from(rest[0] ?? '', 'base64').toString('utf8')
        break
      case '@@other':
        // A directory or symlink where a file belongs: treat as different so it gets replaced.
        facts.files[rest[0]!] = {exists: true, sha256: 'not-a-regular-file'}
        last = undefined
        break
      case '@@nofile':
        facts.files[rest[0]!] = {exists: false}
        last = undefined
        break
      case '@@svc': {
        const [name, enabled, active] = rest
        facts.services[name!] = {enabled: enabled || 'not-found', active: active || 'inactive'}
        break
      }
      case '@@live': {
        const [component, ...value] = rest
        if (component && facts.live[component]) facts.live[component].push(value.join(' '))
        break
      }
      case '@@pending':
        if (rest[0]) facts.pendingReloads.push(rest[0])
        break
      default:
    }
  }
  facts.pendingReloads = [...new Set(facts.pendingReloads)].sort()
  return facts
}
