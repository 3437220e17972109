import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {resolve} from 'node:path'
import {UserError} from '../util/errors.js'

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

function sshG(args: string[], what: string): Map<string, string[]> | undefined {
  const r = spawnSync('ssh', ['-G', ...args], {encoding: 'utf8', timeout: SSH_G_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe']})
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
  if (r.error || r.status !== 0) {
    const why =
      r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT'
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
 * What OpenSSH's configuration says about `name`, as `ssh -G` resolves it (Host and Match blocks, Include,
 * tokens, first value wins): `ssh -G -F FILE NAME` with `file`, else `ssh -G NAME` (~/.ssh/config, then
 * /etc/ssh/ssh_config). Only the values the configuration SETS are returned: ssh's own defaults (resolved for the
 * same name with an empty configuration) are left out, so the inventory's settings and foobar's defaults apply
 * where the configuration says nothing. Without an `ssh` binary, the hand-written reader of ~/.ssh/config.
 */
export function resolveSshConfig(name: string, file?: string): SshConfigEntry {
  const key = `${file ?? ''}\0${name}`
  const known = cache.get(key)
  if (known) return known
  if (file !== undefined && !existsSync(file)) return {}
  const args = [...(file !== undefined ? ['-F', file] : []), '--', name]
  const got = sshG(args, 'reading the ssh configuration')
  let out: SshConfigEntry
  if (!got) {
    const fallback = file ?? resolve(homedir(), '.ssh', 'config')
    let text = ''
    try {
      text = readFileSync(fallback, 'utf8')
    } catch {
      text = ''
    }
    out = parseSshConfig(text, name)
  } else {
    const defaults = sshG(['-F', '/dev/null', '--', name], 'ssh defaults') ?? new Map<string, string[]>()
    const set = (k: string): string | undefined => {
      const v = got.get(k)?.[0]
      return v !== undefined && v !== defaults.get(k)?.[0] && v !== 'none' ? v : undefined
    }
    out = {}
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
  }
  cache.set(key, out)
  return out
}
