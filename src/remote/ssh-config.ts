import {execFile, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {homedir, tmpdir, userInfo} from 'node:os'
import {join, resolve} from 'node:path'
import {UserError} from '../util/errors.js'
import {shq} from '../util/shell.js'

/** The ~/.ssh/config keywords foobar honours for a host: only what the configuration SETS (not ssh's defaults). */
export interface SshConfigEntry {
  hostName?: string
  user?: string
  port?: number
  identityFile?: string[]
  proxyJump?: string
  /** Things the configuration asks for that foobar cannot do (ProxyCommand, HostKeyAlias, ...), as warnings. */
  unsupported?: string[]
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  )
  return re.test(name)
}

/**
 * The hand-written reader, used only when OpenSSH's `ssh` is not installed: Host blocks and `Match all`, no Include,
 * no other Match criteria, no tokens but %h.
 */
export function parseSshConfig(text: string, name: string): SshConfigEntry {
  const out: SshConfigEntry = {}
  let active = true
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    // `Keyword value`, `Keyword = value` or `Keyword=value` (ssh accepts all three).
    const m = /^([^\s=]+)\s*=?\s*(.*)$/.exec(line)
    if (!m) continue
    const key = m[1]!.toLowerCase()
    const value = m[2]!.replace(/^"(.*)"$/, '$1')
    if (key === 'host') {
      const patterns = value.split(/\s+/)
      active =
        patterns.some((p) => !p.startsWith('!') && globMatch(p, name)) &&
        !patterns.some((p) => p.startsWith('!') && globMatch(p.slice(1), name))
      continue
    }
    if (key === 'match') {
      active = value.trim().toLowerCase() === 'all'
      continue
    }
    if (!active) continue
    const tilde = (p: string) => (p.startsWith('~/') ? resolve(homedir(), p.slice(2)) : p)
    if (key === 'hostname' && out.hostName === undefined) out.hostName = value.replace(/%h/g, name)
    else if (key === 'user' && out.user === undefined) out.user = value
    else if (key === 'port' && out.port === undefined) out.port = Number(value)
    else if (key === 'identityfile') (out.identityFile ??= []).push(tilde(value))
    else if (key === 'proxyjump' && out.proxyJump === undefined) out.proxyJump = value
  }
  return out
}

/** `ssh -G` output: keyword (lower case) -> values in order (identityfile and a few others repeat). */
export function parseSshG(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim())
    if (!m) continue
    const key = m[1]!.toLowerCase()
    out.set(key, [...(out.get(key) ?? []), m[2]!])
  }
  return out
}

const SSH_G_TIMEOUT_MS = 10_000

type SshGResult = {error?: Error & {code?: unknown; killed?: boolean}; status: number | null; stdout: string; stderr: string}

/** Its output, undefined without an `ssh` binary; a failure is a UserError naming the command. */
function readSshG(args: string[], what: string, r: SshGResult): Map<string, string[]> | undefined {
  if (r.error && r.error.code === 'ENOENT') return undefined
  if (r.error || r.status !== 0) {
    const why =
      r.error && (r.error.code === 'ETIMEDOUT' || r.error.killed === true)
        ? `did not answer within ${SSH_G_TIMEOUT_MS / 1000}s`
        : (r.stderr || String(r.error ?? `exit ${r.status}`))
            .split('\n')
            .filter((l) => l && !/Pseudo-terminal/.test(l))
            .join(' | ')
    throw new UserError(
      `ssh configuration: \`ssh -G ${args.join(' ')}\` (${what}) failed: ${why}`,
      [],
      ['Check ~/.ssh/config (and the files it includes) with `ssh -G HOST`.'],
    )
  }
  return parseSshG(r.stdout)
}

function sshG(args: string[], what: string): Map<string, string[]> | undefined {
  const r = spawnSync('ssh', ['-G', ...args], {encoding: 'utf8', timeout: SSH_G_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe']})
  return readSshG(args, what, {error: r.error, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? ''})
}

/** One `ssh -G` of a batch: its answer (undefined without an `ssh` binary), or why it failed. */
type Asked = {value?: Map<string, string[]>; error?: unknown}

/**
 * Several `ssh -G` without blocking, in one child process: a shell that starts them all, each into files of its
 * own. A spawn from this process costs it about 5 ms of CPU (it forks a large process), a shell's fork a fraction:
 * over 51 names, 240-340 ms of foobar's CPU against 20-40 ms (issue 20).
 */
function sshGBatch(list: Array<{args: string[]; what: string}>): Promise<Asked[]> {
  let dir: string
  try {
    dir = mkdtempSync(join(tmpdir(), 'foobar-ssh-g-'))
  } catch (e) {
    // No temporary directory: resolveSshConfig asks each name itself, without one.
    return Promise.resolve(list.map(() => ({error: e})))
  }
  // At once, as separate spawns did: one after the other took 1.5 times as long over 51 names (load 12, 2 cores).
  const script = [
    ...list.map(({args}, i) => `{ ssh -G ${args.map(shq).join(' ')} >${i}.out 2>${i}.err </dev/null; echo $? >${i}.status; } &`),
    'wait',
  ].join('\n')
  return new Promise((done) => {
    execFile('/bin/sh', ['-c', script], {cwd: dir, timeout: SSH_G_TIMEOUT_MS}, () => {
      const read = (f: string) => {
        try {
          return readFileSync(join(dir, f), 'utf8')
        } catch {
          return undefined
        }
      }
      const out = list.map(({args, what}, i): Asked => {
        const status = read(`${i}.status`)
        const stderr = read(`${i}.err`) ?? ''
        // No status: killed before this one ended, so it did not answer in time.
        const r: SshGResult =
          status === undefined
            ? {error: Object.assign(new Error('timeout'), {killed: true}), status: null, stdout: '', stderr}
            : {status: Number(status), stdout: read(`${i}.out`) ?? '', stderr}
        // The shell's "not found": no ssh on this machine (spawn's ENOENT).
        if (r.status === 127 && /not found/.test(stderr)) return {value: undefined}
        try {
          return {value: readSshG(args, what, r)}
        } catch (e) {
          return {error: e}
        }
      })
      rmSync(dir, {recursive: true, force: true})
      done(out)
    })
  })
}

/** Expands the tokens an IdentityFile may hold (~, %d, %u, %h, %r, %%). */
function expandPath(p: string, vars: {host: string; user: string}): string {
  const home = homedir()
  const tilde = p === '~' ? home : p.startsWith('~/') ? resolve(home, p.slice(2)) : p
  return tilde.replace(/%([%duhr])/g, (_, t: string) =>
    t === '%' ? '%' : t === 'd' ? home : t === 'u' ? userInfo().username : t === 'h' ? vars.host : vars.user,
  )
}

const cache = new Map<string, SshConfigEntry>()
/**
 * ssh's own defaults (`ssh -G -F /dev/null`): the same for every name but the HostName, which defaults to the name
 * (lower-cased). Asked once a process: each `ssh -G` costs about 11 ms of CPU, and a run over 50 hosts asked 100.
 */
let defaultsOnce: Map<string, string[]> | undefined
const DEFAULTS_ARGS = ['-F', '/dev/null', '--', 'foobar-defaults.invalid']

/**
 * What OpenSSH's configuration says about `name`, as `ssh -G` resolves it (Host and Match blocks, Include,
 * tokens, first value wins): `ssh -G -F FILE NAME` with `file`, else `ssh -G NAME` (~/.ssh/config, then
 * /etc/ssh/ssh_config). Only the values the configuration SETS are returned: ssh's own defaults (resolved with an
 * empty configuration) are left out, so the inventory's settings and foobar's defaults apply where the
 * configuration says nothing. Without an `ssh` binary, the hand-written reader of ~/.ssh/config. `loadSshConfig`
 * asks the same without blocking, for resolveSshConfig to find.
 */
export function resolveSshConfig(name: string, file?: string): SshConfigEntry {
  const key = configKey(name, file)
  const known = cache.get(key)
  if (known) return known
  if (file !== undefined && !existsSync(file)) return {}
  const got = sshG(sshGArgs(name, file), 'reading the ssh configuration')
  defaultsOnce ??= got ? (sshG(DEFAULTS_ARGS, 'ssh defaults') ?? new Map()) : undefined
  const out = entryOf(name, file, got, defaultsOnce)
  cache.set(key, out)
  return out
}

const loading = new Map<string, Promise<void>>()

/** resolveSshConfig's answer for `name`, asked without blocking the event loop (hosts connect at once). */
export function loadSshConfig(name: string, file?: string): Promise<void> {
  return loadSshConfigs([name], file)
}

/**
 * resolveSshConfig's answers for every name, asked at once without blocking, in one child process (with ssh's
 * defaults when not known yet). A failed answer is not kept: resolveSshConfig asks again and says why, where the
 * caller handles it.
 */
export async function loadSshConfigs(names: string[], file?: string): Promise<void> {
  if (file !== undefined && !existsSync(file)) return
  const keys = [...new Set(names)].map((name) => ({name, key: configKey(name, file)}))
  const pending = keys.flatMap(({key}) => loading.get(key) ?? [])
  const todo = keys.filter(({key}) => !cache.has(key) && !loading.has(key))
  if (todo.length) {
    const withDefaults = defaultsOnce === undefined
    const asked = sshGBatch([
      ...(withDefaults ? [{args: DEFAULTS_ARGS, what: 'ssh defaults'}] : []),
      ...todo.map(({name}) => ({args: sshGArgs(name, file), what: 'reading the ssh configuration'})),
    ]).then((answers) => {
      if (withDefaults) {
        const d = answers.shift()!
        if (d.error !== undefined) return
        if (d.value) defaultsOnce ??= d.value
      }
      todo.forEach(({name, key}, i) => {
        const a = answers[i]!
        if (a.error === undefined && !cache.has(key) && (a.value === undefined || defaultsOnce))
          cache.set(key, entryOf(name, file, a.value, defaultsOnce))
      })
    })
    // Whatever went wrong is left to resolveSshConfig, which says it where the caller handles it.
    for (const {key} of todo) {
      const p = asked.catch(() => undefined).finally(() => loading.delete(key))
      loading.set(key, p)
      pending.push(p)
    }
  }
  await Promise.all(pending)
}

const configKey = (name: string, file?: string) => `${file ?? ''}\0${name}`

function sshGArgs(name: string, file?: string): string[] {
  return [...(file !== undefined ? ['-F', file] : []), '--', name]
}

function entryOf(
  name: string,
  file: string | undefined,
  got: Map<string, string[]> | undefined,
  defaultsMap?: Map<string, string[]>,
): SshConfigEntry {
  if (!got) {
    const fallback = file ?? resolve(homedir(), '.ssh', 'config')
    let text = ''
    try {
      text = readFileSync(fallback, 'utf8')
    } catch {
      text = ''
    }
    return parseSshConfig(text, name)
  }
  const defaults = new Map(defaultsMap ?? [])
  defaults.set('hostname', [name.toLowerCase()])
  const set = (k: string): string | undefined => {
    const v = got.get(k)?.[0]
    return v !== undefined && v !== defaults.get(k)?.[0] && v !== 'none' && !(k === 'hostname' && v === name) ? v : undefined
  }
  const out: SshConfigEntry = {}
  const hostName = set('hostname')
  if (hostName) out.hostName = hostName
  const user = set('user')
  if (user) out.user = user
  const port = set('port')
  if (port) out.port = Number(port)
  const proxyJump = set('proxyjump')
  if (proxyJump) out.proxyJump = proxyJump
  const defaultIds = new Set(defaults.get('identityfile') ?? [])
  const ids = (got.get('identityfile') ?? []).filter((f) => !defaultIds.has(f))
  if (ids.length)
    out.identityFile = ids.map((f) => expandPath(f, {host: got.get('hostname')?.[0] ?? name, user: got.get('user')?.[0] ?? ''}))
  const unsupported = ['proxycommand', 'hostkeyalias', 'userknownhostsfile', 'certificatefile'].filter((k) => set(k) !== undefined)
  if (unsupported.length)
    out.unsupported = unsupported.map((k) => `ssh configuration for ${name}: ${k} is not supported by foobar (ignored)`)
  return out
}
