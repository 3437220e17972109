/*
 * Host-key checking against OpenSSH known_hosts files (plain, hashed, wildcards, negation, [host]:port, markers),
 * fingerprints compared with what `ssh-keygen -lf` prints for a real key, and the ~/.ssh/config subset foobar reads.
 */
import {execFileSync} from 'node:child_process'
import {createHmac, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {homedir, tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {checkHostKey, fingerprint, keyTypeOf, knownHostsLine, lookupName, parseKnownHosts} from '../../src/remote/known-hosts.js'
import {parseSshConfig} from '../../src/remote/ssh-config.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-kh-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

/** A syntactically real SSH public key blob of the given type (string type, then opaque key bytes). */
function blob(type: string, seed: string): Buffer {
  const t = Buffer.from(type)
  const k = Buffer.from(seed.padEnd(32, '.'))
  const out = Buffer.alloc(8 + t.length + k.length)
  out.writeUInt32BE(t.length, 0)
  t.copy(out, 4)
  out.writeUInt32BE(k.length, 4 + t.length)
  k.copy(out, 8 + t.length)
  return out
}
const b64 = (b: Buffer) => b.toString('base64')

/** `|1|salt|hmac` exactly as OpenSSH's HashKnownHosts writes it: HMAC-SHA1 of the name keyed with the salt. */
function hashed(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

const ED_A = blob('ssh-ed25519', 'key-a')
const ED_B = blob('ssh-ed25519', 'key-b')
const RSA = blob('ssh-rsa', 'rsa-key')

describe('lookupName', () => {
  test('port 22 is the bare name; any other port is [host]:port', () => {
    expect(lookupName('web1.example.com', 22)).toBe('web1.example.com')
    expect(lookupName('10.0.0.5', 2222)).toBe('[10.0.0.5]:2222')
    expect(lookupName('2001:db8::5', 2222)).toBe('[2001:db8::5]:2222')
  })
})

describe('parseKnownHosts', () => {
  test('plain, comma lists, markers, comments and blank lines; sources name file and line', () => {
    const text = [
      '# a comment',
      '',
      `web1,10.0.0.5 ssh-ed25519 ${b64(ED_A)} deploy@laptop`,
      '   ',
      `@revoked * ssh-ed25519 ${b64(ED_B)}`,
      `@cert-authority *.example.com ssh-rsa ${b64(RSA)}`,
      'garbage-line-with-no-key',
      `[lb1]:2222 ssh-rsa ${b64(RSA)}\r`,
    ].join('\n')
    const entries = parseKnownHosts(text, 'kh')
    expect(entries).toHaveLength(4)
    expect(entries[0]).toMatchObject({patterns: ['web1', '10.0.0.5'], keyType: 'ssh-ed25519', marker: undefined, source: 'kh:3'})
    expect(entries[0]!.key.equals(ED_A)).toBe(true)
    expect(entries[1]).toMatchObject({patterns: ['*'], marker: '@revoked', source: 'kh:5'})
    expect(entries[2]).toMatchObject({patterns: ['*.example.com'], marker: '@cert-authority', keyType: 'ssh-rsa', source: 'kh:6'})
    expect(entries[3]).toMatchObject({patterns: ['[lb1]:2222'], source: 'kh:8'})
    expect(entries[3]!.key.equals(RSA)).toBe(true)
  })
})

describe('checkHostKey', () => {
  const verdict = (lines: string[], names: string[], key: Buffer) => checkHostKey(parseKnownHosts(lines.join('\n'), 'kh'), names, key)

  test('a plain entry with the same key is trusted; another host is unknown', () => {
    const lines = [`web1,10.0.0.5 ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, ['10.0.0.5'], ED_A)).toEqual({status: 'trusted', source: 'kh:1'})
    expect(verdict(lines, ['web1'], ED_A)).toEqual({status: 'trusted', source: 'kh:1'})
    expect(verdict(lines, ['web2', '10.0.0.6'], ED_A)).toEqual({status: 'unknown'})
  })

  test('a different key of the same type is "changed" (every conflicting line named); another type is unknown', () => {
    const lines = [`web1 ssh-ed25519 ${b64(ED_A)}`, `10.0.0.5 ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, ['web1', '10.0.0.5'], ED_B)).toEqual({status: 'changed', sources: ['kh:1', 'kh:2']})
    expect(verdict(lines, ['web1'], RSA)).toEqual({status: 'unknown'})
  })

  test('the same key listed under one name does not vouch for another', () => {
    expect(verdict([`web1 ssh-ed25519 ${b64(ED_A)}`], ['web2'], ED_A)).toEqual({status: 'unknown'})
  })

  test('hashed entries (HashKnownHosts) match only the hashed name, port included', () => {
    const lines = [`${hashed('10.0.0.5')} ssh-ed25519 ${b64(ED_A)}`, `${hashed('[10.0.0.6]:2222')} ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, ['10.0.0.5'], ED_A)).toEqual({status: 'trusted', source: 'kh:1'})
    expect(verdict(lines, ['10.0.0.5'], ED_B)).toEqual({status: 'changed', sources: ['kh:1']})
    expect(verdict(lines, ['10.0.0.50'], ED_A)).toEqual({status: 'unknown'})
    expect(verdict(lines, [lookupName('10.0.0.6', 2222)], ED_A)).toEqual({status: 'trusted', source: 'kh:2'})
    expect(verdict(lines, ['10.0.0.6'], ED_A)).toEqual({status: 'unknown'})
  })

  test('a hashed entry made by the real ssh-keygen -H is matched', () => {
    const file = join(TMP, 'hashed_known_hosts')
    execFileSync('sh', [
      '-c',
      `printf '%s\\n' 'web9.example.com ssh-ed25519 ${b64(ED_A)}' > ${file} && ssh-keygen -H -f ${file} 2>/dev/null`,
    ])
    const text = readFileSync(file, 'utf8')
    expect(text).toMatch(/^\|1\|/)
    expect(text).not.toContain('web9')
    expect(checkHostKey(parseKnownHosts(text, 'kh'), ['web9.example.com'], ED_A).status).toBe('trusted')
    expect(checkHostKey(parseKnownHosts(text, 'kh'), ['web8.example.com'], ED_A).status).toBe('unknown')
  })

  test('wildcards * and ? match like ssh (case-insensitive, dots literal)', () => {
    const lines = [`*.prod.example.com ssh-ed25519 ${b64(ED_A)}`, `10.0.0.? ssh-ed25519 ${b64(ED_B)}`]
    expect(verdict(lines, ['web1.prod.example.com'], ED_A).status).toBe('trusted')
    expect(verdict(lines, ['WEB1.Prod.Example.com'], ED_A).status).toBe('trusted')
    expect(verdict(lines, ['web1-prod-example-com'], ED_A).status).toBe('unknown')
    expect(verdict(lines, ['10.0.0.7'], ED_B).status).toBe('trusted')
    expect(verdict(lines, ['10.0.0.17'], ED_B).status).toBe('unknown')
    expect(verdict(lines, ['10.0.0.7'], ED_A)).toEqual({status: 'changed', sources: ['kh:2']})
  })

  test('a negated pattern excludes a host the wildcard would match', () => {
    const lines = [`*.example.com,!bastion.example.com ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, ['web1.example.com'], ED_A).status).toBe('trusted')
    expect(verdict(lines, ['bastion.example.com'], ED_A).status).toBe('unknown')
    // Only negations: never a match.
    expect(verdict([`!web1 ssh-ed25519 ${b64(ED_A)}`], ['web2'], ED_A).status).toBe('unknown')
  })

  test('[host]:port entries apply to that port only', () => {
    const lines = [`[lb1]:2222 ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, [lookupName('lb1', 2222)], ED_A).status).toBe('trusted')
    expect(verdict(lines, [lookupName('lb1', 22)], ED_A).status).toBe('unknown')
    expect(verdict(lines, [lookupName('lb1', 2223)], ED_A).status).toBe('unknown')
  })

  test('@revoked wins over a trusted line for the same key', () => {
    const lines = [`web1 ssh-ed25519 ${b64(ED_A)}`, `@revoked * ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, ['web1'], ED_A)).toEqual({status: 'revoked', source: 'kh:2'})
    expect(verdict(lines, ['web1'], ED_B)).toEqual({status: 'changed', sources: ['kh:1']})
  })

  test('@cert-authority lines neither trust nor conflict with a plain host key', () => {
    const lines = [`@cert-authority web1 ssh-ed25519 ${b64(ED_A)}`]
    expect(verdict(lines, ['web1'], ED_A).status).toBe('unknown')
    expect(verdict(lines, ['web1'], ED_B).status).toBe('unknown')
  })
})

describe('fingerprint and key type of a real key', () => {
  test('equal to `ssh-keygen -lf`, and knownHostsLine round-trips', () => {
    const key = join(TMP, 'id_test')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', key])
    const pub = readFileSync(`${key}.pub`, 'utf8').trim().split(' ')
    const keyBlob = Buffer.from(pub[1]!, 'base64')
    const printed = execFileSync('ssh-keygen', ['-lf', `${key}.pub`], {encoding: 'utf8'}).split(' ')[1]
    expect(fingerprint(keyBlob)).toBe(printed)
    expect(fingerprint(keyBlob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
    expect(keyTypeOf(keyBlob)).toBe('ssh-ed25519')
    const line = knownHostsLine(lookupName('10.0.0.5', 2222), keyBlob)
    expect(line).toBe(`[10.0.0.5]:2222 ssh-ed25519 ${pub[1]}`)
    expect(checkHostKey(parseKnownHosts(line, 'rec'), ['[10.0.0.5]:2222'], keyBlob)).toEqual({status: 'trusted', source: 'rec:1'})
  })
})

describe('parseSshConfig', () => {
  const CONFIG = `
# global defaults first would win, so they sit at the end as in a real config
Host bastion
  HostName bastion.example.com
  User jump

Host *.prod !db*.prod
  User deploy
  IdentityFile ~/.ssh/prod_ed25519
  ProxyJump jump@bastion:2222

Host web?.prod
  HostName %h.internal.example.com
  Port 2200
  User ignored-because-first-match-wins

Host db1.prod
  Port = 3322
  User=dba

Match all
  IdentityFile /etc/foobar/fallback_key
  Port 22
`
  test('first match wins per keyword; IdentityFile accumulates; %h is the name asked for', () => {
    expect(parseSshConfig(CONFIG, 'web1.prod')).toEqual({
      user: 'deploy',
      identityFile: [resolve(homedir(), '.ssh/prod_ed25519'), '/etc/foobar/fallback_key'],
      proxyJump: 'jump@bastion:2222',
      hostName: 'web1.prod.internal.example.com',
      port: 2200,
    })
  })

  test('a negated pattern keeps a Host block off; `=` separators with or without spaces', () => {
    expect(parseSshConfig(CONFIG, 'db1.prod')).toEqual({port: 3322, user: 'dba', identityFile: ['/etc/foobar/fallback_key']})
  })

  test('no matching Host block: only `Match all` applies; names are case-insensitive', () => {
    expect(parseSshConfig(CONFIG, 'elsewhere')).toEqual({identityFile: ['/etc/foobar/fallback_key'], port: 22})
    expect(parseSshConfig(CONFIG, 'BASTION')).toMatchObject({hostName: 'bastion.example.com', user: 'jump'})
  })

  test('Match with other criteria is not applied (conservative); keywords are case-insensitive; quotes dropped', () => {
    const text = 'Match host web1\n  User nope\nHost web1\n  hostname 10.0.0.5\n  IDENTITYFILE "/keys/my key"\n'
    expect(parseSshConfig(text, 'web1')).toEqual({hostName: '10.0.0.5', identityFile: ['/keys/my key']})
  })

  test('Keyword=value with no spaces at all', () => {
    expect(parseSshConfig('Host=web1\nHostName=10.0.0.9\nPort=2022\n', 'web1')).toEqual({hostName: '10.0.0.9', port: 2022})
  })
})
