/*
 * Host facts: parseFacts on the output factsScript produces, and factsScript itself run for real with /bin/sh on
 * this machine against temp files (dpkg-query, stat, sha256sum, base64; systemctl may be missing or fail here,
 * which must read as "not found / inactive").
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import {userInfo, tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {type FactQuery, PENDING_FILE, factsScript, parseFacts} from '../../src/engine/facts.js'
import {unitLinesScript} from '../../src/engine/units.js'
import {shq} from '../../src/util/shell.js'
import {FakeHost, testInventory} from './support/fake-host.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-facts-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

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
    const size = Buffer.byteLength(utf8)
    expect(facts.files[small]).toEqual({exists: true, mode: 0o640, owner: me, group: myGroup, sha256: sha(utf8), size, content: utf8})
  })

  test('a secret file: hash and mode but never its content', () => {
    const [sha256, size] = [sha('PRIVATE KEY MATERIAL\n'), 'PRIVATE KEY MATERIAL\n'.length]
    expect(facts.files[secret]).toEqual({exists: true, mode: 0o600, owner: me, group: myGroup, sha256, size})
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

/**
 * The per-file / per-service script factsScript replaced (issue 20), verbatim but for its name: the reference the
 * batched script must match, parsed by the same parseFacts.
 */
function perFileFactsScript(q: FactQuery): string {
  const MAX_CONTENT = 256 * 1024
  const lines = [
    'echo "@@os $( . /etc/os-release 2>/dev/null; echo "$ID $VERSION_ID")"',
    'echo "@@virt $(systemd-detect-virt 2>/dev/null || true)"',
  ]
  if (q.packages.length) {
    lines.push(`dpkg-query -W -f='@@pkg \${Package} \${db:Status-Abbrev}\\n' ${q.packages.map(shq).join(' ')} 2>/dev/null || true`)
  }
  for (const f of q.files) {
    const p = shq(f.path)
    const content = f.secret ? '' : `; [ "$(stat -c %s ${p})" -le ${MAX_CONTENT} ] && echo "@@content $(base64 -w0 < ${p})"`
    lines.push(
      `if [ -f ${p} ] && [ ! -L ${p} ]; then echo "@@file ${f.path} $(stat -c '%a %U %G' ${p}) $(sha256sum < ${p} | cut -d' ' -f1)"${content}; ` +
        `elif [ -e ${p} ] || [ -L ${p} ]; then echo "@@other ${f.path}"; else echo "@@nofile ${f.path}"; fi`,
    )
  }
  for (const s of q.services) {
    const u = shq(s)
    lines.push(`echo "@@svc ${s} $(systemctl is-enabled ${u} 2>/dev/null || true) $(systemctl is-active ${u} 2>/dev/null || true)"`)
  }
  lines.push(`[ -f ${PENDING_FILE} ] && sed 's/^/@@pending /' ${PENDING_FILE} || true`)
  for (const l of q.live ?? []) lines.push(`{\n${l.script}\ntrue\n} 2>/dev/null | sed 's/^/@@live ${l.component} /'`)
  return lines.join('\n')
}

/**
 * A systemctl for these tests, as systemd 252's behaves (checked on the lab): is-enabled prints one state per unit
 * and stops at the first unit it does not know (exit 1); is-active prints one line per unit, "inactive" for an
 * unknown one; exit statuses as the real one's. A unit's state comes from $FAKE_UNITS ("name=enabled/active ...").
 */
const FAKE_SYSTEMCTL = `#!/bin/sh
verb=$1; shift
echo "$verb $*" >> "$FAKE_LOG"
rc=1; [ "$verb" = is-enabled ] && rc=4
for u in "$@"; do
  case $u in *.*) ;; *) u=$u.service ;; esac
  st=
  for kv in $FAKE_UNITS; do [ "\${kv%%=*}" = "$u" ] && st=\${kv#*=}; done
  if [ "$verb" = is-enabled ]; then
    [ -n "$st" ] || { echo "Failed to get unit file state for $u: No such file or directory" >&2; exit 1; }
    echo "\${st%/*}"
    case \${st%/*} in enabled|enabled-runtime|static|alias|indirect|generated) rc=0 ;; esac
  else
    a=\${st#*/}; [ -n "$st" ] || a=inactive
    echo "$a"; [ "$a" = active ] && rc=0
  fi
done
exit $rc
`

describe('the batched facts script gives what the per-file one gave (run for real with /bin/sh)', () => {
  const dir = join(TMP, 'compare')
  const bin = join(TMP, 'fake-bin')
  mkdirSync(dir)
  mkdirSync(bin)
  writeFileSync(join(bin, 'systemctl'), FAKE_SYSTEMCTL)
  chmodSync(join(bin, 'systemctl'), 0o755)
  const put = (name: string, content: string | Buffer, mode = 0o644) => {
    writeFileSync(join(dir, name), content)
    chmodSync(join(dir, name), mode)
    return join(dir, name)
  }
  const conf = put('site.conf', 'server {\n  listen 443 ssl; # déjà ✓\n}\n', 0o640)
  const key = put('site.key', '-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n', 0o600)
  const empty = put('empty', '')
  const exact = put('exactly-the-limit', Buffer.alloc(256 * 1024, 'a'))
  const over = put('over-the-limit', Buffer.alloc(256 * 1024 + 1, 'b'))
  const binary = put('binary', Buffer.from([0, 1, 2, 255, 254, 10, 13]))
  const odd = put("it's a $name \\ with `quotes`", 'odd\n')
  const link = join(dir, 'link.conf')
  symlinkSync(conf, link)
  const dangling = join(dir, 'dangling')
  symlinkSync(join(dir, 'nowhere'), dangling)
  const subdir = join(dir, 'a-directory')
  mkdirSync(subdir)
  const fifo = join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const missing = join(dir, 'missing.conf')
  const inMissingDir = join(dir, 'no-dir', 'x.conf')

  const files: FactQuery['files'] = [
    {path: conf},
    {path: key, secret: true},
    {path: empty},
    {path: exact},
    {path: over},
    {path: binary},
    {path: link},
    {path: dangling},
    {path: subdir},
    {path: fifo},
    {path: missing},
    {path: inMissingDir},
    // The same path again, secret: the later entry wins (no content), as its line did.
    {path: empty, secret: true},
    {path: conf},
  ]
  const services = ['nginx', 'ssh.service', 'gone', 'mariadb', 'also-gone.service', 'foobar-lynis.timer', 'masked-one']
  const FAKE_UNITS =
    'nginx.service=enabled/active ssh.service=alias/active mariadb.service=disabled/inactive foobar-lynis.timer=static/active masked-one.service=masked/failed'
  const run = (script: string, units = FAKE_UNITS, pathFirst = '') => {
    const log = join(TMP, `systemctl-${Math.random().toString(36).slice(2)}.log`)
    writeFileSync(log, '')
    const stdout = execFileSync('/bin/sh', ['-c', script], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: {PATH: `${pathFirst}${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, LC_ALL: 'C', FAKE_UNITS: units, FAKE_LOG: log},
    })
    return {stdout, calls: readFileSync(log, 'utf8').split('\n').filter(Boolean)}
  }
  // The unit files of the units the stand-in systemctl knows, in a directory of the test's.
  const unitDir = join(TMP, 'unit-files')
  mkdirSync(unitDir)
  for (const f of ['nginx.service', 'ssh.service', 'mariadb.service', 'foobar-lynis.timer', 'masked-one.service'])
    writeFileSync(join(unitDir, f), '')
  const script = (query: FactQuery) => factsScript(query, {unitDirs: [unitDir]})
  const q: FactQuery = {
    packages: ['coreutils'],
    files,
    services,
    live: [
      {component: 'firewall', script: 'echo "status active"\necho "tuple allow tcp 22"'},
      // Slower than the core facts, and in the background: its lines still come whole, after them.
      {component: 'replication', script: 'sleep 0.2; echo up; echo "vars 0 1"'},
    ],
  }
  const before = run(perFileFactsScript(q))
  const after = run(script(q))
  const old = parseFacts(before.stdout, q)
  const now = parseFacts(after.stdout, q)

  test("the same facts, file by file and service by service (and the regular files' sizes, which it had not)", () => {
    const sizes = Object.fromEntries(Object.entries(now.files).map(([path, f]) => [path, f.size]))
    expect(sizes[conf]).toBe(statSync(conf).size)
    expect(sizes[exact]).toBe(256 * 1024)
    expect(sizes[over]).toBe(256 * 1024 + 1)
    expect(sizes[missing]).toBeUndefined()
    expect(sizes[subdir]).toBeUndefined()
    const sizeless = structuredClone(now)
    for (const f of Object.values(sizeless.files)) delete f.size
    expect(sizeless).toStrictEqual(old)
    // What the reference says, so that the comparison compares something.
    expect(Object.keys(now.files)).toHaveLength(12)
    expect(now.files[conf]!.content).toContain('déjà ✓')
    expect(now.files[exact]!.content).toHaveLength(256 * 1024)
    expect(now.files[over]).not.toHaveProperty('content')
    expect(now.files[empty]).not.toHaveProperty('content')
    expect(now.files[binary]!.content).toBe(Buffer.from([0, 1, 2, 255, 254, 10, 13]).toString('utf8'))
    expect(now.files[key]).toEqual({
      exists: true,
      mode: 0o600,
      owner: expect.any(String),
      group: expect.any(String),
      sha256: sha(readFileSync(key, 'utf8')),
      size: statSync(key).size,
    })
    for (const p of [link, dangling, subdir, fifo]) expect(now.files[p]).toEqual({exists: true, sha256: 'not-a-regular-file'})
    expect(now.files[missing]).toEqual({exists: false})
    expect(now.files[inMissingDir]).toEqual({exists: false})
    expect(now.services).toEqual({
      nginx: {enabled: 'enabled', active: 'active'},
      'ssh.service': {enabled: 'alias', active: 'active'},
      gone: {enabled: 'not-found', active: 'inactive'},
      mariadb: {enabled: 'disabled', active: 'inactive'},
      'also-gone.service': {enabled: 'not-found', active: 'inactive'},
      'foobar-lynis.timer': {enabled: 'static', active: 'active'},
      'masked-one': {enabled: 'masked', active: 'failed'},
    })
  })

  test('a secret file content never leaves the host', () => {
    expect(after.stdout).not.toContain('SECRET')
    expect(after.stdout).not.toContain(Buffer.from('SECRET').toString('base64').slice(0, 6))
    expect(after.stdout).not.toContain(Buffer.from(readFileSync(key)).toString('base64').slice(0, 20))
  })

  test('two systemctl calls: is-enabled only for the units that have a unit file', () => {
    expect(before.calls).toHaveLength(2 * services.length)
    expect(after.calls.filter((c) => c.startsWith('is-active'))).toEqual([`is-active ${services.join(' ')}`])
    expect(after.calls.filter((c) => c.startsWith('is-enabled'))).toEqual([
      `is-enabled ${services.filter((u) => !u.includes('gone')).join(' ')}`,
    ])
  })

  test('the live-state scripts run at once: their lines whole and in order, and their temporary directory removed', () => {
    expect(now.live).toEqual({firewall: ['status active', 'tuple allow tcp 22'], replication: ['up', 'vars 0 1']})
    const tmp = join(TMP, 'live-tmp')
    const meet = join(TMP, 'live-meet')
    mkdirSync(tmp)
    mkdirSync(meet)
    // Each script leaves its mark, then waits (up to 5 s) for the others': only scripts that run at once all see them.
    const waitFor = (me: string, others: string[]) =>
      `: > ${meet}/${me}; i=0; while [ $i -lt 50 ] && ! { ${others.map((o) => `[ -e ${meet}/${o} ]`).join(' && ')}; }; do sleep 0.1; i=$((i+1)); done; ` +
      `if ${others.map((o) => `[ -e ${meet}/${o} ]`).join(' && ')}; then echo ${me}-met-all; else echo ${me}-alone; fi; echo ${me}2`
    const names = ['a', 'b', 'c']
    const together: FactQuery = {
      packages: [],
      files: [],
      services: [],
      live: names.map((c) => ({
        component: c,
        script: waitFor(
          c,
          names.filter((o) => o !== c),
        ),
      })),
    }
    const out = execFileSync('/bin/sh', ['-c', script(together)], {encoding: 'utf8', env: {PATH: '/usr/bin:/bin', TMPDIR: tmp}})
    expect(parseFacts(out, together).live).toEqual({a: ['a-met-all', 'a2'], b: ['b-met-all', 'b2'], c: ['c-met-all', 'c2']})
    expect(readdirSync(tmp)).toEqual([])
    // No temporary directory to be had: one by one, the same lines as the per-script form.
    const plain: FactQuery = {...together, live: names.map((c) => ({component: c, script: `echo ${c}1; echo ${c}2`}))}
    const seq = execFileSync('/bin/sh', ['-c', script(plain)], {
      encoding: 'utf8',
      env: {PATH: '/usr/bin:/bin', TMPDIR: join(TMP, 'no-such-dir')},
    })
    expect(parseFacts(seq, plain).live).toEqual({a: ['a1', 'a2'], b: ['b1', 'b2'], c: ['c1', 'c2']})
  })

  test("the live lines are tagged by one process, whatever their number; a line never runs into the next component's or poses as a core fact", () => {
    // A sed that logs each call, ahead of the real one: the live lines and the hashes must not need it.
    const sedBin = join(TMP, 'sed-log-bin')
    const calls = join(TMP, 'sed-calls')
    mkdirSync(sedBin)
    writeFileSync(join(sedBin, 'sed'), `#!/bin/sh\necho sed >> ${shq(calls)}\nexec /bin/sed "$@"\n`, {mode: 0o755})
    const eight: FactQuery = {
      ...q,
      live: [
        // No newline after its last line: the next component's first line stays apart.
        {component: 'a', script: "printf 'a1\\na2'"},
        // Lines that look like the core facts' are still the component's own.
        {component: 'b', script: "echo '@@svc nginx.service enabled active'; echo '@@live a forged'; echo '  spaced \\\\ back'"},
        ...['c', 'd', 'e', 'f', 'g', 'h'].map((c) => ({component: c, script: `echo ${c}1`})),
      ],
    }
    const f = parseFacts(run(script(eight), FAKE_UNITS, `${sedBin}:`).stdout, eight)
    expect(f.live).toEqual({
      a: ['a1', 'a2'],
      b: ['@@svc nginx.service enabled active', '@@live a forged', '  spaced \\ back'],
      c: ['c1'],
      d: ['d1'],
      e: ['e1'],
      f: ['f1'],
      g: ['g1'],
      h: ['h1'],
    })
    // The hashes went through the same process, and read as before.
    expect(f.files).toStrictEqual(now.files)
    expect(f.services).toStrictEqual(now.services)
    expect(existsSync(calls) ? readFileSync(calls, 'utf8') : '').toBe('')
  })

  test("the components' units come back with the services' two systemctl calls, as each component's own query printed them", () => {
    // Enabled, alias, static, disabled (is-enabled fails), masked, no unit file, and one that is also a service.
    const hardening = ['nginx', 'ssh.service', 'foobar-lynis.timer', 'mariadb', 'masked-one', 'gone', 'never-there.socket']
    const upgrades = ['foobar-lynis.timer', 'mariadb', 'also-gone.service']
    const withUnits: FactQuery = {
      ...q,
      live: [
        {component: 'hardening', script: 'echo "sysctl kernel.sysrq 0"', units: hardening},
        {component: 'upgrades', script: '', units: upgrades},
      ],
    }
    const r = run(script(withUnits))
    const f = parseFacts(r.stdout, withUnits)
    // What each component's query printed on its own (the per-component form these lines replace).
    const own = (units: string[]) =>
      run(
        unitLinesScript(
          units.map((unit) => ({unit, prefix: `unit ${unit}`})),
          'none',
          [unitDir],
        ),
      )
        .stdout.split('\n')
        .filter(Boolean)
    expect(f.live.hardening).toEqual(['sysctl kernel.sysrq 0', ...own(hardening)])
    expect(f.live.upgrades).toEqual(own(upgrades))
    // Among them the forms the parsers rely on: a failing is-enabled state, then "none" and the active state.
    expect(f.live.upgrades).toEqual([
      'unit foobar-lynis.timer static active',
      'unit mariadb disabled',
      'none inactive',
      'unit also-gone.service none inactive',
    ])
    // The services read as before, and systemd asked twice in all, not twice a component.
    expect(f.services).toStrictEqual(now.services)
    expect(r.calls.filter((c) => c.startsWith('is-enabled')).length).toBe(1)
    expect(r.calls.filter((c) => c.startsWith('is-active')).length).toBe(1)
  })

  test('no systemd at all (systemctl fails for everything): not-found / inactive, as before', () => {
    const none = parseFacts(run(script(q), '').stdout, q)
    expect(none.services).toStrictEqual(parseFacts(run(perFileFactsScript(q), '').stdout, q).services)
    expect(Object.values(none.services).every((s) => s.enabled === 'not-found' && s.active === 'inactive')).toBe(true)
  })

  test('the path with quotes, $ and a backslash is read as itself (the old script broke on it)', () => {
    // The old line was `echo "@@file PATH ..."`: its $name and backquotes ran in the remote shell.
    expect(now.files[odd]).toBeUndefined()
    const withOdd: FactQuery = {...q, files: [{path: odd}, {path: conf}]}
    const f = parseFacts(run(script(withOdd)).stdout, withOdd)
    expect(f.files[odd]).toEqual({
      exists: true,
      mode: 0o644,
      owner: expect.any(String),
      group: expect.any(String),
      sha256: sha('odd\n'),
      size: 4,
      content: 'odd\n',
    })
    expect(f.files[conf]!.content).toBe(old.files[conf]!.content)
  })

  test('a path with a line break, or not absolute, is refused', () => {
    expect(() => factsScript({...q, files: [{path: '/etc/a\nb'}]})).toThrow(/line break/)
    expect(() => factsScript({...q, files: [{path: 'etc/a'}]})).toThrow(/absolute/)
  })

  test("a file that changed between the reads gets no content (never another file's)", () => {
    // The blob holds a piece that is not what the hash says: no content, and the next file's piece is still its own.
    const out = [
      `@@stat 644 root root 3 /a`,
      `@@stat 644 root root 2 /b`,
      `@@sha ${sha('xyz')}  /a`,
      `@@sha ${sha('hi')}  /b`,
      `@@blob ${Buffer.from('XYZhi').toString('base64')}`,
    ].join('\n')
    const f = parseFacts(out, {packages: [], files: [{path: '/a'}, {path: '/b'}], services: []})
    expect(f.files['/a']).toEqual({exists: true, mode: 0o644, owner: 'root', group: 'root', sha256: sha('xyz'), size: 3})
    expect(f.files['/b']!.content).toBe('hi')
  })
})

describe('the virtualisation fact', () => {
  test("a container's type is read from /run/systemd/container, without starting systemd-detect-virt; elsewhere that is asked", async () => {
    const f = new FakeHost(testInventory(['web1 10.77.0.12 web'], {lean: true}).hosts[0]!)
    try {
      // A stand-in that says when it is started.
      f.put('/var/tmp/detect-virt', '')
      f.command('systemd-detect-virt', 'echo started >> "$FAKE_ROOT/var/tmp/detect-virt"; echo kvm')
      const q: FactQuery = {packages: [], files: [], services: []}
      const virt = async () => parseFacts((await f.run(factsScript(q))).stdout, q).virt
      expect(await virt()).toBe('kvm')
      expect(f.file('/var/tmp/detect-virt')).toBe('started\n')
      f.put('/run/systemd/container', 'lxc\n')
      expect(await virt()).toBe('lxc')
      expect(f.file('/var/tmp/detect-virt')).toBe('started\n')
    } finally {
      f.cleanup()
    }
  })
})
