import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {resolve} from 'node:path'

/** The few ~/.ssh/config keywords foobar honours for a host (first match wins, as in ssh). */
export interface SshConfigEntry {
  hostName?: string
  user?: string
  port?: number
  identityFile?: string[]
  proxyJump?: string
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

export function readSshConfig(name: string, file = resolve(homedir(), '.ssh', 'config')): SshConfigEntry {
  try {
    return parseSshConfig(readFileSync(file, 'utf8'), name)
  } catch {
    return {}
  }
}
