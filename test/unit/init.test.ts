/**
 * `foobar init` (issue 21, item 1): flags only (scripts), or a real terminal answering the prompts; the result is an
 * inventory `inventory check` accepts. Host keys: scanned from a real sshd, fingerprints as ssh-keygen prints them,
 * recorded once.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {parseHostFlag} from '../../src/commands/init.js'
import {parseKeyscan, recordHostKeys, scanHostKeys} from '../../src/remote/keyscan.js'
import {BIN, ROOT, runCli} from './support/run-cli.js'
import {sshdLab, sshdUnavailable} from './support/sshd.js'

const dir = mkdtempSync(join(tmpdir(), 'foobar-init-'))
const FLAGS = ['--domain', 'www.example.org', '--email', 'ops@example.org', '--admin-cidr', '198.51.100.0/24']

test('--host NAME=ADDRESS:ROLES, IPv6 included; a bad one says the form', () => {
  expect(parseHostFlag('web1=10.0.0.2:web,db')).toEqual({name: 'web1', address: '10.0.0.2', roles: ['web', 'db']})
  expect(parseHostFlag('lb1=2001:db8::10:lb')).toEqual({name: 'lb1', address: '2001:db8::10', roles: ['lb']})
  expect(() => parseHostFlag('web1=10.0.0.2')).toThrow(/expected NAME=ADDRESS:ROLE\[,ROLE\]/)
  expect(() => parseHostFlag('web1=10.0.0.2:www')).toThrow(/roles among lb, web, db, monitoring/)
})

describe('init --non-interactive', () => {
  test('writes an inventory inventory check accepts; refuses to replace it; missing answers named', async () => {
    const out = join(dir, 'flags.yml')
    const hosts = ['--host', 'lb1=192.0.2.10:lb', '--host', 'web1=192.0.2.11:web,db', '--host', 'web2=192.0.2.12:web,db']
    const r = await runCli([
      'init',
      '--non-interactive',
      '--no-connect',
      '--out',
      out,
      '--ssh-user',
      'deploy',
      ...FLAGS,
      ...hosts,
      '--json',
    ])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const text = readFileSync(out, 'utf8')
    expect(text).toContain('primary: "web1"')
    expect(text).toContain('replicas: ["web2"]')
    const check = await runCli(['inventory', 'check', '-i', out, '--no-files'])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    const again = await runCli(['init', '--non-interactive', '--no-connect', '--out', out, ...FLAGS, ...hosts])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain(`${out} exists: not replaced`)
    const missing = await runCli(['init', '--non-interactive', '--out', join(dir, 'none.yml'), '--domain', 'www.example.org'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('init without a terminal needs --email, --host (one per host), --admin-cidr')
  })

  test('an answer the inventory refuses: exit 2 naming the field, nothing written', async () => {
    const out = join(dir, 'bad.yml')
    const r = await runCli([
      'init',
      '--non-interactive',
      '--no-connect',
      '--out',
      out,
      ...FLAGS.map((f) => (f === 'ops@example.org' ? 'not an address' : f)),
      '--host',
      'web1=192.0.2.11:web',
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/site\.email/)
    expect(() => readFileSync(out)).toThrow()
  })
})

test('a real terminal: the prompts answered in turn give an inventory inventory check accepts', async () => {
  const home = mkdtempSync(join(dir, 'home-'))
  const out = join(dir, 'asked.yml')
  const down = '\x1b[B'
  const answers: Array<[string, string]> = [
    ["site's name", 'www.example.org\r'],
    ['Contact e-mail', 'ops@example.org\r'],
    ['Host name', 'web1\r'],
    ["web1's address", '192.0.2.11\r'],
    ['Roles of web1', `${down} ${down} \r`],
    ['Add another host', 'y\r'],
    ['Host name', 'lb1\r'],
    ["lb1's address", '192.0.2.10\r'],
    ['Roles of lb1', ' \r'],
    ['Add another host', 'n\r'],
    ['SSH user', 'deploy\r'],
    ['SSH key', '\r'],
    ['Networks allowed to reach SSH', '\x15198.51.100.0/24\r'],
    ['Site certificate', `${down}\r`],
  ]
  const script = join(dir, 'answers.json')
  writeFileSync(script, JSON.stringify(answers))
  let transcript: string
  try {
    transcript = execFileSync(
      'python3',
      [join(ROOT, 'test/unit/support/pty_answer.py'), script, '--', process.execPath, BIN, 'init', '--out', out, '--no-connect'],
      {
        encoding: 'utf8',
        env: {...process.env, HOME: home, FOOBAR_INVENTORY: ''},
        timeout: 120_000,
      },
    )
  } catch (error) {
    const e = error as {stdout?: string; stderr?: string; status?: number}
    throw new Error(`init in a terminal failed (${e.status}):\n${e.stdout}\n${e.stderr}`)
  }
  expect(transcript).toContain(`wrote ${out}: 2 hosts`)
  const text = readFileSync(out, 'utf8')
  expect(text).toMatch(/name: "web1"\n {4}address: "192\.0\.2\.11"\n {4}roles: \[web, db\]/)
  expect(text).toMatch(/name: "lb1"\n {4}address: "192\.0\.2\.10"\n {4}roles: \[lb\]/)
  expect(text).toContain('type: self-signed')
  expect(text).toContain('user: "deploy"')
  const check = await runCli(['inventory', 'check', '-i', out, '--no-files'])
  expect(check.code, check.stdout + check.stderr).toBe(0)
}, 150_000)

describe.skipIf(sshdUnavailable() !== undefined && !process.env.CI)('host keys', () => {
  const lab = sshdLab()
  afterAll(() => lab.cleanup())

  test('scanned from a real sshd: the fingerprint ssh-keygen prints; recorded once in known_hosts (0600)', async () => {
    const sshd = await lab.start('init')
    const keys = await scanHostKeys('127.0.0.1', sshd.port)
    expect(keys.map((k) => k.line.split(' ').slice(1).join(' '))).toContain(sshd.hostKey.split(' ').slice(0, 2).join(' '))
    const keygen = execFileSync('ssh-keygen', ['-lf', '-'], {input: `${sshd.hostKey}\n`, encoding: 'utf8'})
    expect(keys.map((k) => k.fingerprint)).toContain(keygen.split(' ')[1])
    expect(keys[0]!.line.startsWith(`[127.0.0.1]:${sshd.port} `)).toBe(true)
    const kh = join(dir, 'kh', 'known_hosts')
    expect(await recordHostKeys(kh, keys)).toBe(keys.length)
    expect(await recordHostKeys(kh, keys)).toBe(0)
    expect(readFileSync(kh, 'utf8').trim().split('\n')).toHaveLength(keys.length)
    // ssh itself accepts the recorded key.
    const r = execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', kh], {encoding: 'utf8'})
    expect(r).toContain('found')
  })

  test('no SSH server there: a clear error, nothing recorded', async () => {
    await expect(scanHostKeys('127.0.0.1', 1, 2)).rejects.toThrow(/no SSH host key from \[127\.0\.0\.1\]:1/)
    expect(parseKeyscan('# 127.0.0.1:22 SSH-2.0-OpenSSH\n')).toEqual([])
  })
})
