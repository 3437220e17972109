/*
 * Certificate material through the built CLI (`node bin/run.js`, dist/ and the oclif manifest from `npm run build`):
 * tls.source files that are not a certificate and its key stop `inventory check`, `plan` and `provision` with
 * exit 2 before any connection, and never show the key; `plan` creates no state directory.
 */
import {execFileSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {runCli} from './support/run-cli.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-tls-cli-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

const cli = (args: string[]) => runCli(args)

const key = join(TMP, 'site.key')
const cert = join(TMP, 'site.crt')
execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '30',
    '-subj',
    '/CN=www.example.test',
    '-addext',
    'subjectAltName=DNS:www.example.test,DNS:example.test',
  ],
  {stdio: 'ignore'},
)
const KEY_LINE = readFileSync(key, 'utf8').split('\n')[1]!

/**
 * An inventory whose SSH identity file does not exist (bad input: every command stops before contacting a host,
 * listing it with the tls.source problems) and the given tls.source.
 */
function inventory(source: string): string {
  const dir = mkdtempSync(join(TMP, 'inv-'))
  const file = join(dir, 'site.yml')
  writeFileSync(
    file,
    [
      'site: {domain: www.example.test, aliases: [example.test], email: admin@example.test}',
      `ssh: {user: deploy, identity_file: ${join(dir, 'no-such-key')}, known_hosts: ${join(dir, 'known_hosts')}}`,
      'firewall: {admin_cidrs: [10.0.0.0/24]}',
      'monitoring: {enabled: false}',
      `tls: {source: ${source}}`,
      'hosts:',
      '  - {name: lb1, address: 10.0.0.11, roles: [lb]}',
      '  - {name: web1, address: 10.0.0.12, roles: [web]}',
      '',
    ].join('\n'),
  )
  return file
}

describe('tls.source files through the CLI', () => {
  test('cert and key swapped: inventory check, plan and provision exit 2 naming the files; the key is never printed', async () => {
    const file = inventory(`{type: files, cert: ${key}, key: ${cert}}`)
    for (const args of [['inventory', 'check'], ['plan'], ['plan', '--json'], ['provision', '--yes', '--json']]) {
      const r = await cli([...args, '-i', file])
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2)
      expect(r.stdout + r.stderr).toContain(`tls.source.cert (${key}) is a private key, not a certificate`)
      expect(r.stdout + r.stderr).not.toContain(KEY_LINE)
      expect(r.stdout + r.stderr).not.toContain('BEGIN PRIVATE KEY')
    }
    expect(existsSync(join(file, '..', '.foobar'))).toBe(false)
  })

  test('/etc/shadow as cert and key: inventory check fails (exit 2, not PEM), without showing a line of it', async () => {
    const r = await cli(['inventory', 'check', '-i', inventory('{type: files, cert: /etc/shadow, key: /etc/shadow}'), '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(2)
    const body = JSON.parse(r.stdout) as {error: {details: string[]}}
    // Among every problem with the files it refers to (its SSH key is missing too, on purpose).
    expect(body.error.details).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\s*tls\.source\.cert \(\/etc\/shadow\) (is not PEM|cannot be read)/),
        expect.stringMatching(/^\s*tls\.source\.key \(\/etc\/shadow\) (is not PEM|cannot be read)/),
      ]),
    )
    expect(r.stdout).not.toMatch(/root:/)
  })

  test('the right files: inventory check is valid', async () => {
    const file = inventory(`{type: files, cert: ${cert}, key: ${key}}`)
    // The SSH key it names exists for this one, a usable one (inventory check reads every file the inventory refers
    // to, the way connecting does).
    const sshKey = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: {type: 'spki', format: 'pem'},
      privateKeyEncoding: {type: 'sec1', format: 'pem'},
    }).privateKey
    writeFileSync(join(dirname(file), 'no-such-key'), sshKey, {mode: 0o600})
    const r = await cli(['inventory', 'check', '-i', file])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })
})

describe('plan creates no key material', () => {
  test('self-signed, hosts not reachable: no state directory next to the inventory afterwards', async () => {
    const file = inventory('{type: self-signed}')
    const r = await cli(['plan', '-i', file, '--json'])
    expect([1, 2], r.stdout + r.stderr).toContain(r.code)
    expect(r.stdout + r.stderr).toMatch(/no-such-key/)
    expect(existsSync(join(file, '..', '.foobar'))).toBe(false)
  })
})
