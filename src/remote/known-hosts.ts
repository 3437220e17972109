import {createHash, createHmac} from 'node:crypto'

/*
 * OpenSSH known_hosts, as ssh itself reads it: plain and hashed (`|1|salt|hmac`) host patterns, wildcards,
 * negation, `[host]:port` for non-standard ports, @revoked. ssh2 accepts ANY key unless we check: this is the check.
 */

export interface KnownHostEntry {
  patterns: string[]
  keyType: string
  key: Buffer
  marker?: '@revoked' | '@cert-authority'
  source: string
}

export type HostKeyVerdict =
  {status: 'trusted'; source: string} | {status: 'unknown'} | {status: 'changed'; sources: string[]} | {status: 'revoked'; source: string}

export function parseKnownHosts(text: string, sourceName: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const fields = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker']
    const [hosts, keyType, keyB64] = fields
    if (!hosts || !keyType || !keyB64) return
    entries.push({patterns: hosts.split(','), keyType, key: Buffer.from(keyB64, 'base64'), marker, source: `${sourceName}:${i + 1}`})
  })
  return entries
}

/** The name ssh looks up: `host` on port 22, `[host]:port` otherwise. */
export function lookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${escaped}$`, 'i')
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|')
    if (!salt || !hash) return false
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
  }
  return globToRegExp(pattern).test(name)
}

export function entryMatches(entry: KnownHostEntry, names: string[]): boolean {
  return names.some((name) => {
    let positive = false
    for (const p of entry.patterns) {
      if (p.startsWith('!')) {
        if (patternMatches(p.slice(1), name)) return false
      } else if (patternMatches(p, name)) positive = true
    }
    return positive
  })
}

/** The key type inside an SSH public key blob (first length-prefixed string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

/** OpenSSH's `SHA256:...` fingerprint. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/**
 * Decide about a presented key: trusted if an entry for this name has the same key; changed if entries exist for
 * this name and key type but none matches (a man in the middle, or a reinstalled host); unknown otherwise.
 */
export function checkHostKey(entries: KnownHostEntry[], names: string[], blob: Buffer): HostKeyVerdict {
  const type = keyTypeOf(blob)
  const forHost = entries.filter((e) => e.marker !== '@cert-authority' && entryMatches(e, names))
  const revoked = entries.find((e) => e.marker === '@revoked' && e.key.equals(blob))
  if (revoked) return {status: 'revoked', source: revoked.source}
  const same = forHost.find((e) => e.marker === undefined && e.key.equals(blob))
  if (same) return {status: 'trusted', source: same.source}
  const conflicting = forHost.filter((e) => e.marker === undefined && e.keyType === type)
  if (conflicting.length > 0) return {status: 'changed', sources: conflicting.map((e) => e.source)}
  return {status: 'unknown'}
}

export function knownHostsLine(name: string, blob: Buffer): string {
  return `${name} ${keyTypeOf(blob)} ${blob.toString('base64')}`
}
