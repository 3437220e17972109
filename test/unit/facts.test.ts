/*
 * Host facts: parseFacts on the output factsScript produces, and factsScript itself run for real with /bin/sh on
 * this machine against temp files (dpkg-query, stat, sha256sum, base64; systemctl may be missing or fail here,
 * which must read as "not found / inactive").
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {userInfo, tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {type FactQuery, PENDING_FILE, factsScript, parseFacts} from '../../src/engine/facts.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-facts-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true}))

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const b64 = (s: string) => Buffer.from(s).toString('base64')

describe('parseFacts', () => {
  const q: FactQuery = {
    packages: ['nginx', 'ufw', 'haproxy', 'mariadb-server'],
    files: [
      {path: '/etc/nginx/conf.d/foobar.conf'},
      {path: '/etc/foobar/tls/site.key', secret: true},
      {path: '/etc/nginx/sites-enabled/default'},
      {path: '/etc/haproxy/haproxy.cfg'},
    ],
    services: ['nginx', 'haproxy', 'mariadb'],
    live: [{component: 'firewall', script: 'true'}],
  }
  const conf = 'server {\n  listen 443 ssl;\n}\n'
  const output = [
    '@@os debian 12',
    '@@virt systemd-nspawn',
    '@@pkg nginx ii ',
    '@@pkg ufw ii ',
    '@@pkg haproxy rc ',
    `@@file /etc/nginx/conf.d/foobar.conf 644 root root ${sha(conf)}`,
    `@@content ${b64(conf)}`,
    `@@file /etc/foobar/tls/site.key 600 root ssl-cert ${sha('KEY')}`,
    '@@other /etc/nginx/sites-enabled/default',
    '@@nofile /etc/haproxy/haproxy.cfg',
    '@@svc nginx enabled active',
    '@@svc haproxy  ',
    '@@svc mariadb disabled inactive',
    '@@pending nginx',
    '@@pending haproxy',
    '@@pending nginx',
    '@@live firewall status active',
    '@@live firewall tuple allow tcp 22 0.0.0.0/0 any 10.77.0.1 in comment=737368',
    '',
  ].join('\n')
  const facts = parseFacts(output, q)

  test('os and virtualisation', () => {
    expect(facts.os).toBe('debian 12')
    expect(facts.virt).toBe('systemd-nspawn')
    expect(parseFacts('@@os debian 12\n@@virt \n', q).virt).toBe('none')
  })

  test('packages: only "ii" is installed; half-removed (rc) and unlisted ones are absent', () => {
    expect(facts.packages).toEqual({nginx: 'installed', ufw: 'installed', haproxy: 'absent', 'mariadb-server': 'absent'})
  })

  test('files: mode (octal), owner, group, hash, content; a secret file carries no content', () => {
    expect(facts.files['/etc/nginx/conf.d/foobar.conf']).toEqual({
      exists: true,
      mode: 0o644,
      owner: 'root',
      group: 'root',
      sha256: sha(conf),
      content: conf,
    })
    expect(facts.files['/etc/foobar/tls/site.key']).toEqual({
      exists: true,
      mode: 0o600,
      owner: 'root',
      group: 'ssl-cert',
      sha256: sha('KEY'),
    })
  })

  test('a non-regular file exists but never matches a hash; a missing one does not exist', () => {
    expect(facts.files['/etc/nginx/sites-enabled/default']).toMatchObject({exists: true})
    expect(facts.files['/etc/nginx/sites-enabled/default']!.sha256).not.toMatch(/^[0-9a-f]{64}$/)
    expect(facts.files['/etc/haproxy/haproxy.cfg']).toEqual({exists: false})
  })

  test('services: empty systemctl answers read as not-found / inactive', () => {
    expect(facts.services).toEqual({
      nginx: {enabled: 'enabled', active: 'active'},
      haproxy: {enabled: 'not-found', active: 'inactive'},
      mariadb: {enabled: 'disabled', active: 'inactive'},
    })
  })

  test('pending reloads deduplicated and sorted; firewall lines kept raw', () => {
    expect(facts.pendingReloads).toEqual(['haproxy', 'nginx'])
    expect(facts.live).toEqual({firewall: ['status active', 'tuple allow tcp 22 0.0.0.0/0 any 10.77.0.1 in comment=737368']})
  })
})

describe('factsScript run for real with /bin/sh', () => {
  const dir = join(TMP, 'etc-dir') // remote paths are validated: no spaces
  mkdirSync(dir)
  const small = join(dir, 'small.conf')
  const secret = join(dir, 'secret.key')
  const empty = join(dir, 'empty')
  const link = join(dir, 'link.conf')
  const subdir = join(dir, 'a-directory')
  const missing = join(dir, 'missing.conf')
  const utf8 = 'listen 443;\n# déjà vu — ✓\n'
  writeFileSync(small, utf8)
  chmodSync(small, 0o640)
  writeFileSync(secret, 'PRIVATE KEY MATERIAL\n')
  chmodSync(secret, 0o600)
  writeFileSync(empty, '')
  symlinkSync(small, link)
  mkdirSync(subdir)

  const q: FactQuery = {
    packages: ['coreutils', 'no-such-package-xyz'],
    files: [{path: small}, {path: secret, secret: true}, {path: empty}, {path: link}, {path: subdir}, {path: missing}],
    services: ['no-such-service-xyz'],
    live: [{component: 'firewall', script: 'echo "status inactive"'}],
  }
  const out = execFileSync('/bin/sh', ['-c', factsScript(q)], {encoding: 'utf8', env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C'}})
  const facts = parseFacts(out, q)
  const me = userInfo().username
  const myGroup = execFileSync('id', ['-gn'], {encoding: 'utf8'}).trim()

  test('the os line comes from /etc/os-release', () => {
    const osRelease = readFileSync('/etc/os-release', 'utf8')
    const id = /^ID="?([^"\n]*)"?$/m.exec(osRelease)?.[1]
    expect(facts.os.split(' ')[0]).toBe(id)
  })

  test('an installed package and an unknown one', () => {
    expect(facts.packages).toEqual({coreutils: 'installed', 'no-such-package-xyz': 'absent'})
  })

  test('a regular file: mode, owner, group, sha256 and its exact (UTF-8) content', () => {
    expect(facts.files[small]).toEqual({exists: true, mode: 0o640, owner: me, group: myGroup, sha256: sha(utf8), content: utf8})
  })

  test('a secret file: hash and mode but never its content', () => {
    expect(facts.files[secret]).toEqual({exists: true, mode: 0o600, owner: me, group: myGroup, sha256: sha('PRIVATE KEY MATERIAL\n')})
    expect(out).not.toContain(b64('PRIVATE KEY MATERIAL\n'))
  })

  test('an empty file exists with empty content', () => {
    expect(facts.files[empty]).toMatchObject({exists: true, sha256: sha(''), content: ''})
  })

  test('a symlink and a directory are "other": present, never equal to a wanted hash', () => {
    for (const p of [link, subdir]) {
      expect(facts.files[p]!.exists).toBe(true)
      expect(facts.files[p]!.sha256).not.toBe(sha(utf8))
      expect(facts.files[p]!.content).toBeUndefined()
    }
  })

  test('a missing file', () => {
    expect(facts.files[missing]).toEqual({exists: false})
  })

  test('a service that does not exist (or no systemd at all) reads as not running', () => {
    const svc = facts.services['no-such-service-xyz']!
    expect(svc.enabled).not.toBe('enabled')
    expect(svc.active).not.toBe('active')
    expect(svc.enabled).toMatch(/^[a-z-]+$/)
  })

  test('component fact lines are passed through; pending reloads match the pending file', () => {
    expect(facts.live).toEqual({firewall: ['status inactive']})
    const pending = existsSync(PENDING_FILE) ? [...new Set(readFileSync(PENDING_FILE, 'utf8').split('\n').filter(Boolean))].sort() : []
    expect(facts.pendingReloads).toEqual(pending)
  })
})
