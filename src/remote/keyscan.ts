import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {dirname} from 'node:path'

/** One host key as a known_hosts line and its OpenSSH fingerprint. */
export interface ScannedKey {
  line: string
  type: string
  fingerprint: string
}

/** How known_hosts names a host: the address, in brackets with the port when it is not 22. */
export const knownHostsName = (address: string, port: number) => (port === 22 ? address : `[${address}]:${port}`)

/** `SHA256:...` as ssh-keygen -l prints it: base64 of the key blob's SHA-256, without padding. */
export function fingerprintOf(blobBase64: string): string {
  return `SHA256:${createHash('sha256').update(Buffer.from(blobBase64, 'base64')).digest('base64').replace(/=+$/, '')}`
}

/** Pure: ssh-keyscan's output as keys (comments and malformed lines dropped). */
export function parseKeyscan(out: string): ScannedKey[] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .flatMap((line) => {
      const [name, type, blob] = line.split(/\s+/)
      if (!name || !type || !blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) return []
      return [{line: `${name} ${type} ${blob}`, type, fingerprint: fingerprintOf(blob)}]
    })
}

/** The host's keys as it presents them now (ssh-keyscan: no login, nothing recorded yet). */
export function scanHostKeys(address: string, port: number, timeoutSeconds = 5): Promise<ScannedKey[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh-keyscan', ['-T', String(timeoutSeconds), '-p', String(port), '-t', 'ed25519,ecdsa,rsa', address], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', (e) => reject(new Error(`ssh-keyscan: ${e.message} (install openssh-client)`)))
    child.on('close', () => {
      const keys = parseKeyscan(out)
      if (keys.length === 0) reject(new Error(`no SSH host key from ${knownHostsName(address, port)} (unreachable, or not an SSH server)`))
      else resolve(keys)
    })
  })
}

const expand = (p: string) => (p === '~' || p.startsWith('~/') ? `${homedir()}${p.slice(1)}` : p)

/** Appends the keys known_hosts does not have yet (the file made 0600 when new); returns how many were added. */
export async function recordHostKeys(knownHosts: string, keys: ScannedKey[]): Promise<number> {
  const file = expand(knownHosts)
  const have = existsSync(file) ? new Set((await readFile(file, 'utf8')).split('\n').map((l) => l.trim())) : new Set<string>()
  const fresh = keys.filter((k) => !have.has(k.line))
  if (fresh.length === 0) return 0
  await mkdir(dirname(file), {recursive: true, mode: 0o700})
  await appendFile(file, fresh.map((k) => `${k.line}\n`).join(''), {mode: 0o600})
  return fresh.length
}
