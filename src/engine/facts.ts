import {createHash} from 'node:crypto'
import {shq} from '../util/shell.js'
import {ENABLED_OK, unitLinesScript} from './units.js'

/** What the plan needs to know about a host, gathered in one round trip. */
export interface FileFact {
  exists: boolean
  mode?: number
  owner?: string
  group?: string
  sha256?: string
  /** Bytes (a regular file). */
  size?: number
  /** Present for small non-secret files, for diffs (with `contents: false`, only once asked: contentsScript). */
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
/** The largest file whose content the facts carry for a diff. */
export const MAX_CONTENT = 256 * 1024

export interface FactQuery {
  packages: string[]
  /** Packages whose version the plan compares (the pinned ones). */
  versions?: string[]
  files: Array<{path: string; secret?: boolean}>
  services: string[]
  /**
   * The components' live-state scripts: their output goes back to each component untouched, followed by a line for
   * each of its `units` (LivePlanner.units: asked with the services, in one query).
   */
  live?: Array<{component: string; script: string; units?: string[]}>
  /**
   * false: the files' mode, owner, hash and size, without their contents. The contents serve only the diffs of files
   * that differ, which are asked for afterwards (contentsScript): a no-op run reads none (a full-stack web host's
   * facts carried ~46 KB of contents in base64, issue 20). Default true.
   */
  contents?: boolean
}

/** A component's unit as `echo "unit U $(systemctl is-enabled U || echo none) $(systemctl is-active U || true)"` printed it. */
export function unitLines(unit: string, enabled: string, active: string): string[] {
  if (ENABLED_OK.includes(enabled)) return [`unit ${unit} ${enabled} ${active}`]
  if (enabled === '') return [`unit ${unit} none ${active}`]
  return [`unit ${unit} ${enabled}`, `none ${active}`]
}

/** Every unit the facts ask systemd about: the services, then the components' units not among them. */
function allUnits(q: FactQuery): string[] {
  return [...new Set([...q.services, ...(q.live ?? []).flatMap((l) => l.units ?? [])])]
}

/**
 * One shell script whose output parseFacts reads. Every value is quoted. A fixed number of processes, whatever the
 * number of files and services (it used to fork ~5 per file and 2 per service; issue 20): the files are sorted by
 * the shell's own tests (no process), then one `stat`, one `sha256sum` and (unless `contents: false`) one
 * `find | cat | base64` over all of them; the services in two `systemctl` calls (units.ts). The components'
 * live-state scripts run meanwhile, in the background. `unitDirs`: where unit files are looked for (a test's own directory; the host's by default).
 */
export function factsScript(q: FactQuery, opts: {unitDirs?: string[]} = {}): string {
  for (const l of q.live ?? []) {
    if (!/^[a-z][a-z0-9-]*$/.test(l.component))
      throw new Error(`component name ${JSON.stringify(l.component)}: lowercase letters, digits, -`)
  }
  // A component that only asks about units has no script to run.
  const live = (q.live ?? []).filter((l) => l.script.trim() !== '')
  // The components' live-state scripts run at once, in the background, each into a file of its own (a database
  // client, systemctl and iptables wait on other processes: on a lab web server they took 140 of the script's 200 ms
  // one after the other); their files are printed after the core facts. Tagged by the engine, so a component's
  // lines can never be mistaken for another's (or for a core fact). Without a temporary directory, one by one.
  // The files are tagged at the end by one awk (a sed for each cost about 8 ms of a lab host's CPU, issue 20).
  const liveFns = live.map((l, i) => `fb_live${i}() {\n${l.script}\ntrue\n}`)
  const liveStart = live.map(
    (l, i) =>
      `if [ -n "$fb_lt" ]; then fb_live${i} > "$fb_lt/${i}" 2>/dev/null & ` +
      `else fb_live${i} 2>/dev/null | sed 's/^/@@live ${l.component} /'; fi`,
  )
  const lines = [
    'echo "@@os $( . /etc/os-release 2>/dev/null; echo "$ID $VERSION_ID")"',
    ...(live.length ? [...liveFns, 'fb_lt=$(mktemp -d 2>/dev/null) || fb_lt=', ...liveStart] : []),
    // A container's type is what systemd wrote in /run/systemd/container at boot, read by the shell (no process);
    // systemd-detect-virt (about 12 ms of a lab host's CPU) only where there is none (a VM, bare metal).
    'fb_virt=; { IFS= read -r fb_virt < /run/systemd/container; } 2>/dev/null',
    '[ -n "$fb_virt" ] || fb_virt=$(systemd-detect-virt 2>/dev/null || true)',
    'echo "@@virt $fb_virt"',
  ]
  if (q.packages.length) {
    lines.push(`dpkg-query -W -f='@@pkg \${Package} \${db:Status-Abbrev}\\n' ${q.packages.map(shq).join(' ')} 2>/dev/null || true`)
  }
  if (q.versions?.length) {
    lines.push(`dpkg-query -W -f='@@ver \${Package} \${Version}\\n' ${q.versions.map(shq).join(' ')} 2>/dev/null || true`)
  }
  if (q.files.length) lines.push(filesScript(q.files, live.length > 0, q.contents !== false))
  lines.push(
    unitLinesScript(
      allUnits(q).map((s) => ({unit: s, prefix: `@@svc ${s}`})),
      'empty',
      opts.unitDirs,
    ),
  )
  lines.push(`[ -f ${PENDING_FILE} ] && sed 's/^/@@pending /' ${PENDING_FILE} || true`)
  if (live.length) lines.push(`if [ -n "$fb_lt" ]; then wait; ${tagFiles(live, q.files.length > 0)}; rm -rf "$fb_lt"; fi`)
  return lines.filter(Boolean).join('\n')
}

/**
 * The files' part of factsScript. Per path, by test builtins: a regular file (not a symlink) joins the list;
 * anything else that exists (a symlink, even dangling, a directory, a FIFO) is `@@other`, nothing there `@@nofile`.
 * Then over the regular files: `@@stat MODE OWNER GROUP SIZE PATH`, `@@sha HEX  PATH` (sha256sum's line: a leading
 * backslash when it escaped the name), and `@@blob` the base64 of the non-secret ones of at most MAX_CONTENT bytes,
 * concatenated in query order (parseFacts cuts it by the sizes and checks each piece against its hash). A FIFO or
 * device is never read. Paths must be absolute and without a newline (stat and sha256sum print one line per file).
 */
function filesScript(files: FactQuery['files'], tempDir: boolean, contents: boolean): string {
  for (const f of files) {
    if (!f.path.startsWith('/') || /[\n\r]/.test(f.path))
      throw new Error(`file path ${JSON.stringify(f.path)}: must be absolute, without a line break`)
  }
  const sort = files.map((f) => {
    const p = shq(f.path)
    return (
      `if [ -f ${p} ] && [ ! -L ${p} ]; then set -- "$@" ${p}; ` +
      `elif [ -e ${p} ] || [ -L ${p} ]; then printf '@@other %s\\n' ${p}; else printf '@@nofile %s\\n' ${p}; fi`
    )
  })
  const open = contents ? [...new Set(files.filter((f) => !f.secret).map((f) => f.path))] : []
  return [
    'fb_files() {',
    'set --',
    ...sort,
    '[ $# -gt 0 ] || return 0',
    `stat -c '@@stat %a %U %G %s %n' -- "$@" 2>/dev/null`,
    // Into the temporary directory when there is one, tagged there with the live lines (one process less).
    tempDir
      ? `if [ -n "$fb_lt" ]; then sha256sum -- "$@" > "$fb_lt/sha" 2>/dev/null; else sha256sum -- "$@" 2>/dev/null | sed 's/^/@@sha /'; fi`
      : `sha256sum -- "$@" 2>/dev/null | sed 's/^/@@sha /'`,
    '}',
    'fb_files',
    ...(open.length
      ? [
          // Operands in query order; -type f and -size look at the file itself (no symlink followed) when find reads it.
          `printf '@@blob '; find ${open.map(shq).join(' ')} -maxdepth 0 -type f -size -${MAX_CONTENT + 1}c -exec cat -- {} + 2>/dev/null | base64 -w0; echo`,
        ]
      : []),
  ].join('\n')
}

/**
 * The contents of these (non-secret) files, for the diffs of a plan gathered with `contents: false`: the files' part
 * of factsScript alone, read with parseFacts and the query contentsQuery(paths) gives. A file's content counts only
 * where its hash is the one the facts saw (it may have changed in between).
 */
export function contentsScript(paths: string[]): string {
  return filesScript(contentsQuery(paths).files, false, true)
}

export function contentsQuery(paths: string[]): FactQuery {
  return {packages: [], files: paths.map((path) => ({path})), services: []}
}

/**
 * One awk printing the live scripts' files (and sha256sum's, when written there), each line with its tag:
 * `@@live COMPONENT ` or `@@sha `. A file that does not exist (no file part ran) is skipped by the shell's test; a
 * last line without its newline gets one, so it never runs into the next file's first line.
 */
function tagFiles(live: Array<{component: string}>, shas: boolean): string {
  // Component names are checked (lowercase letters, digits, -): safe inside awk's strings and the shell's quotes.
  const tags = [...live.map((l, i) => `t["${i}"] = "@@live ${l.component}"`), ...(shas ? ['t["sha"] = "@@sha"'] : [])]
  const files = [...live.map((_, i) => `"$fb_lt/${i}"`), ...(shas ? ['"$fb_lt/sha"'] : [])]
  return (
    `set --; for fb_f in ${files.join(' ')}; do if [ -f "$fb_f" ]; then set -- "$@" "$fb_f"; fi; done; ` +
    `[ $# -eq 0 ] || awk 'BEGIN { ${tags.join('; ')} } { f = FILENAME; sub(/.*\\//, "", f); print t[f] " " $0 }' "$@" 2>/dev/null`
  )
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
  // Every unit's two states as systemctl printed them ('' where it printed nothing).
  const units = new Map<string, {enabled: string; active: string}>()
  for (const p of q.packages) facts.packages[p] = 'absent'
  let last: FileFact | undefined
  // factsScript's file lines, put together after the loop.
  const kinds = new Map<string, 'other' | 'nofile'>()
  const stats = new Map<string, {mode: number; owner?: string; group?: string; size: number}>()
  const shas = new Map<string, string>()
  let blob: Buffer | undefined
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
        facts.files[rest.join(' ')] = {exists: true, sha256: 'not-a-regular-file'}
        kinds.set(rest.join(' '), 'other')
        last = undefined
        break
      case '@@nofile':
        facts.files[rest.join(' ')] = {exists: false}
        kinds.set(rest.join(' '), 'nofile')
        last = undefined
        break
      case '@@stat': {
        const [mode, owner, group, size, ...path] = rest
        stats.set(path.join(' '), {mode: parseInt(mode ?? '0', 8), owner, group, size: Number(size)})
        break
      }
      case '@@sha': {
        // sha256sum's own line: "HEX  PATH", or "\\HEX  PATH" with \\ and \n escaped in PATH.
        const m = /^(\\?)([0-9a-f]{64}) {2}(.*)$/.exec(rest.join(' '))
        if (m) shas.set(m[1] ? m[3]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c)) : m[3]!, m[2]!)
        break
      }
      case '@@blob':
        blob = Buffer.from(rest[0] ?? '', 'base64')
        break
      case '@@svc': {
        const [name, enabled, active] = rest
        if (name) units.set(name, {enabled: enabled ?? '', active: active ?? ''})
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
  for (const name of q.services) {
    const u = units.get(name)
    if (u) facts.services[name] = {enabled: u.enabled || 'not-found', active: u.active || 'inactive'}
  }
  for (const l of q.live ?? []) {
    for (const name of l.units ?? []) {
      const u = units.get(name) ?? {enabled: '', active: ''}
      facts.live[l.component]!.push(...unitLines(name, u.enabled, u.active))
    }
  }
  if (stats.size || kinds.size) fileFacts(facts, q, kinds, stats, shas, blob)
  facts.pendingReloads = [...new Set(facts.pendingReloads)].sort()
  return facts
}

/**
 * The files as the per-file script reported them: each query entry in order (a later entry for the same path wins,
 * as its line did). The blob holds the non-secret regular files of at most MAX_CONTENT bytes, each path once, in
 * query order; a piece whose hash is not the file's (the file changed between the reads) is no content.
 */
function fileFacts(
  facts: HostFacts,
  q: FactQuery,
  kinds: Map<string, 'other' | 'nofile'>,
  stats: Map<string, {mode: number; owner?: string; group?: string; size: number}>,
  shas: Map<string, string>,
  blob: Buffer | undefined,
): void {
  const contents = new Map<string, string>()
  let at = 0
  for (const path of new Set(q.files.filter((f) => !f.secret).map((f) => f.path))) {
    const st = stats.get(path)
    if (kinds.has(path) || !st || !(st.size <= MAX_CONTENT) || !blob) continue
    const piece = blob.subarray(at, at + st.size)
    at += st.size
    if (piece.length === st.size && createHash('sha256').update(piece).digest('hex') === shas.get(path))
      contents.set(path, piece.toString('utf8'))
  }
  for (const f of q.files) {
    const st = stats.get(f.path)
    if (kinds.has(f.path) || !st) continue
    const fact: FileFact = {exists: true, mode: st.mode, owner: st.owner, group: st.group, sha256: shas.get(f.path), size: st.size}
    if (!f.secret && contents.has(f.path)) fact.content = contents.get(f.path)
    facts.files[f.path] = fact
  }
}
