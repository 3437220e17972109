/*
 * planHost: (desired state of the lab inventory, hand-made facts) -> changes. A converged host plans nothing; each
 * kind of drift plans exactly the change that repairs it; secrets never appear in what `plan` prints.
 */
import {describe as group, expect, test} from 'vitest'
import {STACK, desiredState} from '../../src/components/index.js'
import {UFW_RULES_FILE, desiredRules} from '../../src/components/firewall/index.js'
import {TLS_PATHS} from '../../src/components/tls/profile.js'
import {type TlsMaterial, leafKey} from '../../src/engine/contract.js'
import {type HostDesired, preparePlanners} from '../../src/engine/desired.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {HAPROXY_CFG} from '../../src/components/haproxy/index.js'
import type {HostFacts} from '../../src/engine/facts.js'
import {type Change, POLICY_RC_D, contentsWanted, describe, factQuery, planHost, sha256} from '../../src/engine/plan.js'
import {jsonChanges} from '../../src/cli/plan-output.js'
import {iptablesVariant, loadExample} from './support/render.js'

const SITE_KEY = '-----BEGIN PRIVATE KEY-----\nSITE-SECRET-abc123\n-----END PRIVATE KEY-----\n'
const MATERIAL: TlsMaterial = {
  siteChain: '-----BEGIN CERTIFICATE-----\nSITE\n-----END CERTIFICATE-----\n',
  siteKey: SITE_KEY,
  backendCa: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  internalCa: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  leaves: {
    [leafKey('db', 'web1')]: {cert: 'DB1 CERT\n', key: 'DB1-SECRET-KEY\n'},
    [leafKey('db', 'web2')]: {cert: 'DB2 CERT\n', key: 'DB2-SECRET-KEY\n'},
  },
}

// The database fence's account derives its password from the replication secret: from the environment here, not
// the lab's secret file (which exists only while a lab is up).
process.env.FOOBAR_TEST_PLAN_REPL = 'repl-secret-for-plan-tests'
const envSecret = (t: string) => t.replace(/replication_password: .*/, 'replication_password: {env: FOOBAR_TEST_PLAN_REPL}')
const inv = loadExample('lab', envSecret)
/**
 * The live planners of a run, as provision prepares them: the firewall and the hardening. Replication is left out
 * (it reads the lab's secret file, and its plan is the database's own business).
 */
const planners = (i = inv) => preparePlanners(STACK, i, i.hosts, ['firewall', 'hardening'])
const desired = (name: string, i = inv) =>
  desiredState(
    i,
    i.hosts.find((h) => h.name === name)!,
    {material: MATERIAL, controlAddress: '10.77.0.1', planners: planners(i)},
  )

/** The firewall's live lines of a host whose firewall is exactly as desired (ufw's tuples, or iptables-save's lines). */
function liveFirewall(d: HostDesired): string[] {
  if (!d.live.some((l) => l.component === 'firewall')) return []
  const want = desiredRules({inventory: d.inventory, host: d.host, ports: d.ports, controlAddress: d.controlAddress})
  if (d.host.firewall.backend === 'ufw') {
    const t = (port: number, src: string) => `tuple allow tcp ${port} ${src.includes(':') ? '::/0' : '0.0.0.0/0'} any ${src} in comment=00`
    return [
      'status active',
      'policy DROP',
      ...want.rules.flatMap((r) =>
        r.from.length ? r.from.map((s) => t(r.port!, s.replace(/\/(32|128)$/, ''))) : [t(r.port!, '0.0.0.0/0'), t(r.port!, '::/0')],
      ),
    ]
  }
  const saved = (text = '') =>
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.replace(/ \[0:0\]$/, ''))
  return [...saved(want.v4).map((l) => `v4 ${l}`), ...saved(want.v6).map((l) => `v6 ${l}`)]
}

/** Facts of a host that is exactly as desired. */
function converged(d: HostDesired): HostFacts {
  const files: HostFacts['files'] = {}
  for (const f of d.files)
    files[f.path] = {
      exists: true,
      mode: f.mode,
      owner: f.owner,
      group: f.group,
      sha256: sha256(f.content),
      ...(f.secret ? {} : {content: f.content}),
    }
  for (const p of d.absent) files[p] = {exists: false}
  return {
    os: 'debian 12',
    virt: 'systemd-nspawn',
    packages: Object.fromEntries(d.packages.map((p) => [p, 'installed' as const])),
    files,
    services: Object.fromEntries(d.services.map((s) => [s.name, {enabled: 'enabled', active: 'active'}])),
    pendingReloads: [],
    live: {firewall: liveFirewall(d), hardening: []},
  }
}

const kinds = (changes: Change[]) => changes.map((c) => c.kind)
const printed = (changes: Change[]) => JSON.stringify(jsonChanges(changes)) + changes.map(describe).join('\n')

group('planHost', () => {
  test.each(['lb1', 'web1', 'web2'])('a converged host plans no change at all (%s)', (name) => {
    const d = desired(name)
    expect(d.files.some((f) => f.secret)).toBe(true)
    expect(planHost(d, converged(d))).toEqual({host: name, changes: []})
  })

  test('a converged host with the iptables backend plans nothing either', () => {
    const i = loadExample('lab', (t) => iptablesVariant(envSecret(t)))
    for (const name of ['lb1', 'web1']) {
      const d = desired(name, i)
      expect(planHost(d, converged(d)).changes).toEqual([])
    }
  })

  test('missing packages: one install of exactly those', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.packages.nginx = 'absent'
    facts.packages.ufw = 'absent'
    expect(planHost(d, facts).changes).toEqual([{kind: 'packages', install: ['nginx', 'ufw']}])
  })

  test("rkhunter's first install carries its install guard (shown by plan); an upgrade or another package's does not", () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.packages.rkhunter = 'absent'
    facts.packages.ufw = 'absent'
    const [change] = planHost(d, facts).changes
    expect(change).toMatchObject({
      kind: 'packages',
      install: ['rkhunter', 'ufw'],
      guards: [{package: 'rkhunter', path: '/etc/rkhunter.conf.local'}],
    })
    expect(describe(change!)).toBe(
      'install packages: rkhunter ufw\n  ~ /etc/rkhunter.conf.local during the install only (for rkhunter; unless a file is there)',
    )
    expect(jsonChanges([change!])[0]).toMatchObject({guards: [{package: 'rkhunter', path: '/etc/rkhunter.conf.local'}]})
    facts.packages.rkhunter = 'installed'
    expect(planHost(d, facts).changes).toEqual([{kind: 'packages', install: ['ufw']}])
    // Pinned to another version (an upgrade): installed again, its maintainer scripts left to do what they always do.
    const pinned = {...d, versions: {rkhunter: '1.4.6-11'}}
    expect(planHost(pinned, {...facts, versions: {rkhunter: '1.4.6-10'}}).changes[0]).not.toHaveProperty('guards')
  })

  test("a transaction that brings a declared service's unit keeps the maintainer scripts from starting it (policy-rc.d); an existing unit is left to them", () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.packages.nginx = 'absent'
    facts.packages['mariadb-server'] = 'absent'
    delete facts.services.nginx
    facts.services.mariadb = {enabled: 'not-found', active: 'inactive'}
    const [change] = planHost(d, facts).changes
    expect(change).toMatchObject({kind: 'packages', install: ['mariadb-server', 'nginx']})
    const guard = change!.kind === 'packages' ? change.guards?.find((g) => g.path === POLICY_RC_D) : undefined
    expect(guard).toMatchObject({mode: 0o755, note: 'services foobar starts itself once configured: mariadb, nginx'})
    expect(guard!.content).toMatch(/^ {2}mariadb\|nginx\) exit 101 ;;$/m)
    expect(describe(change!)).toContain(
      '/usr/sbin/policy-rc.d during the install only (services foobar starts itself once configured: mariadb, nginx; unless a file is there)',
    )
    // The units already there (a pinned version's upgrade, say): their maintainer scripts restart them as always.
    facts.services.nginx = {enabled: 'enabled', active: 'active'}
    facts.services.mariadb = {enabled: 'disabled', active: 'inactive'}
    expect(planHost(d, facts).changes[0]).toEqual({kind: 'packages', install: ['mariadb-server', 'nginx']})
  })

  test('a missing config file is created (diff of all its lines) and its service reloaded once', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.files[NGINX_SITE] = {exists: false}
    facts.files[TLS_PATHS.cert] = {exists: false}
    const changes = planHost(d, facts).changes
    expect(kinds(changes)).toEqual(['file', 'file', 'reload'])
    const create = changes.find((c) => c.kind === 'file' && c.path === NGINX_SITE) as Extract<Change, {kind: 'file'}>
    expect(create.action).toBe('create')
    const body = d.files.find((f) => f.path === NGINX_SITE)!.content
    expect(create.diff!.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++'))).toHaveLength(
      body.trimEnd().split('\n').length,
    )
    expect(changes.at(-1)).toEqual({kind: 'reload', name: 'nginx', how: 'reload', reason: 'config changed', component: 'nginx'})
  })

  test('a changed file: a diff of the lines that differ; without the old content only "differs"', () => {
    const d = desired('lb1')
    const facts = converged(d)
    const want = d.files.find((f) => f.path === HAPROXY_CFG)!.content
    const old = want.replace(/balance roundrobin/, 'balance leastconn')
    expect(old).not.toBe(want)
    facts.files[HAPROXY_CFG] = {...facts.files[HAPROXY_CFG]!, sha256: sha256(old), content: old}
    const [update, reload] = planHost(d, facts).changes as [Extract<Change, {kind: 'file'}>, Change]
    expect(update).toMatchObject({kind: 'file', action: 'update', path: HAPROXY_CFG})
    expect(
      update
        .diff!.split('\n')
        .filter((l) => /^[-+] /.test(l))
        .map((l) => l.replace(/\s+/g, ' ')),
    ).toEqual(['- balance leastconn', '+ balance roundrobin'])
    expect(reload).toEqual({kind: 'reload', name: 'haproxy', how: 'reload', reason: 'config changed', component: 'haproxy'})

    delete facts.files[HAPROXY_CFG]!.content
    expect((planHost(d, facts).changes[0] as Extract<Change, {kind: 'file'}>).diff).toBe('(content differs)')
  })

  test('contentsWanted: the content a diff needs and the facts lack, of differing non-secret regular files only', () => {
    const d = desired('lb1')
    // The facts as gathered without contents: hashes and sizes.
    const facts = converged(d)
    for (const f of Object.values(facts.files)) if (f.exists) [f.size, f.content] = [100, undefined]
    expect(contentsWanted(d, facts)).toEqual([])
    const secret = d.files.find((f) => f.secret)!
    facts.files[HAPROXY_CFG]!.sha256 = sha256('old')
    facts.files[secret.path]!.sha256 = sha256('old key')
    expect(contentsWanted(d, facts)).toEqual([HAPROXY_CFG])
    facts.files[HAPROXY_CFG]!.size = 256 * 1024 + 1
    expect(contentsWanted(d, facts)).toEqual([])
    // Not a regular file (a directory where the file belongs), or already read: nothing to ask.
    facts.files[HAPROXY_CFG] = {exists: true, sha256: 'not-a-regular-file'}
    expect(contentsWanted(d, facts)).toEqual([])
    facts.files[HAPROXY_CFG] = {exists: true, sha256: sha256('old'), size: 3, content: 'old'}
    expect(contentsWanted(d, facts)).toEqual([])
  })

  test('only mode or owner wrong: fixed in place, no reload', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.files[NGINX_SITE] = {...facts.files[NGINX_SITE]!, mode: 0o666, owner: 'www-data'}
    const changes = planHost(d, facts).changes
    expect(changes).toHaveLength(1)
    expect(changes[0]).toMatchObject({
      kind: 'file',
      action: 'attributes',
      path: NGINX_SITE,
      detail: 'mode/owner 666 www-data:root -> 644 root:root',
    })
  })

  test('a symlink or directory where a file belongs is replaced', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.files[NGINX_SITE] = {exists: true, sha256: 'not-a-regular-file'}
    expect(planHost(d, facts).changes[0]).toMatchObject({kind: 'file', action: 'update', path: NGINX_SITE})
  })

  test('secret files: created or changed, their content is never in a diff, a description or the JSON', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.files[TLS_PATHS.key] = {exists: false}
    facts.files[TLS_PATHS.dbKey] = {exists: true, mode: 0o640, owner: 'root', group: 'mysql', sha256: sha256('OLD-DB-SECRET\n')}
    const changes = planHost(d, facts).changes
    const files = changes.filter((c): c is Extract<Change, {kind: 'file'}> => c.kind === 'file')
    expect(files.map((c) => [c.path, c.action])).toEqual([
      [TLS_PATHS.key, 'create'],
      [TLS_PATHS.dbKey, 'update'],
    ])
    for (const c of files) expect(c.diff).toMatch(/^\(secret content/)
    const out = printed(changes)
    for (const secret of ['SITE-SECRET-abc123', 'DB1-SECRET-KEY', 'OLD-DB-SECRET']) expect(out).not.toContain(secret)
    expect(kinds(changes).filter((k) => k === 'reload')).toHaveLength(2)
  })

  test("the fact query never asks for a secret file's content", () => {
    const q = factQuery(desired('web1'))
    expect(q.files.find((f) => f.path === TLS_PATHS.key)?.secret).toBe(true)
    expect(q.files.find((f) => f.path === NGINX_SITE)?.secret).toBeFalsy()
    expect(q.files.find((f) => f.path === '/etc/nginx/sites-enabled/default')?.secret).toBe(true)
  })

  test('several changed files of one service: one reload; every notified service once, sorted', () => {
    const d = desired('web1')
    const facts = converged(d)
    for (const p of [NGINX_SITE, TLS_PATHS.cert, TLS_PATHS.key, '/opt/foobar-app/app.py', '/etc/systemd/system/foobar-app.service'])
      facts.files[p] = {exists: false}
    const reloads = planHost(d, facts).changes.filter((c) => c.kind === 'reload')
    expect(reloads).toEqual([
      {kind: 'reload', name: 'foobar-app', how: 'restart', reason: 'config changed', component: 'app'},
      {kind: 'reload', name: 'nginx', how: 'reload', reason: 'config changed', component: 'nginx'},
    ])
  })

  test('reloads left pending by an interrupted run are planned; unknown names are ignored', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.pendingReloads = ['mariadb', 'nginx', 'not-a-service-here']
    expect(planHost(d, facts).changes).toEqual([
      {kind: 'reload', name: 'mariadb', how: 'restart', reason: 'pending from an interrupted run', component: 'mysql'},
      {kind: 'reload', name: 'nginx', how: 'reload', reason: 'pending from an interrupted run', component: 'nginx'},
    ])
  })

  test('a file that must be absent is removed, and the daemon reading it reloaded', () => {
    const d = desired('web1')
    expect(d.absent).toContain('/etc/nginx/sites-enabled/default')
    const facts = converged(d)
    facts.files['/etc/nginx/sites-enabled/default'] = {exists: true, sha256: 'not-a-regular-file'}
    expect(planHost(d, facts).changes).toEqual([
      {kind: 'remove', path: '/etc/nginx/sites-enabled/default', component: 'nginx'},
      {kind: 'reload', name: 'nginx', how: 'reload', reason: 'config changed', component: 'nginx'},
    ])
  })

  test('services disabled or stopped are enabled and/or started', () => {
    const d = desired('web1')
    const facts = converged(d)
    facts.services.nginx = {enabled: 'disabled', active: 'active'}
    facts.services.mariadb = {enabled: 'enabled', active: 'failed'}
    delete facts.services['foobar-app']
    const changes = planHost(d, facts).changes
    expect(changes).toEqual([
      {kind: 'service', name: 'foobar-app', enable: true, start: true, component: 'app'},
      {kind: 'service', name: 'nginx', enable: true, start: false, component: 'nginx'},
      {kind: 'service', name: 'mariadb', enable: false, start: true, component: 'mysql'},
    ])
    expect(changes.map(describe)).toEqual(['enable and start foobar-app', 'enable nginx', 'start mariadb'])
  })

  test('USBGuard is left alone in a container (the host machine owns the USB devices), managed on a VM', () => {
    const d = desired('web1')
    const facts = converged(d)
    // In the lab's containers the unit is conditioned out: never active, whatever foobar does.
    facts.services.usbguard = {enabled: 'enabled', active: 'inactive'}
    facts.files['/etc/usbguard/rules.conf'] = {
      exists: true,
      mode: 0o600,
      owner: 'root',
      group: 'root',
      sha256: sha256('old\n'),
      content: 'old\n',
    }
    const inContainer = planHost(d, facts).changes
    expect(inContainer.map(describe)).toEqual([expect.stringContaining('/etc/usbguard/rules.conf')])
    expect(kinds(inContainer)).toEqual(['file'])
    const onVm = planHost(d, {...facts, virt: 'kvm'}).changes
    expect(onVm.filter((c) => c.kind !== 'file')).toEqual([
      {kind: 'service', name: 'usbguard', enable: false, start: true, component: 'hardening'},
      {kind: 'reload', name: 'usbguard', how: 'restart', reason: 'config changed', component: 'hardening'},
    ])
  })

  test('firewall: live drift (missing rule, inactive) plans an activation naming what differs', () => {
    const d = desired('lb1')
    const facts = converged(d)
    facts.live.firewall = facts.live
      .firewall!.filter((l) => !l.includes(' 443 '))
      .map((l) => (l === 'status active' ? 'status inactive' : l))
    const changes = planHost(d, facts).changes
    expect(changes).toMatchObject([
      {
        kind: 'live',
        component: 'firewall',
        action: {
          kind: 'activate',
          guarded: true,
          data: {
            backend: 'ufw',
            reason: 'ufw is inactive, 2 rules missing',
            missing: ['allow tcp 443 from 0.0.0.0/0', 'allow tcp 443 from ::/0'],
            extra: [],
          },
        },
      },
    ])
    expect(changes).toHaveLength(1)
    expect(describe(changes[0]!)).toContain('+ allow tcp 443 from 0.0.0.0/0')
  })

  test('firewall: a changed rules file plans an activation even when the live rules still match', () => {
    const d = desired('lb1')
    const facts = converged(d)
    facts.files[UFW_RULES_FILE] = {exists: false}
    expect(kinds(planHost(d, facts).changes)).toEqual(['file', 'live'])
    expect(planHost(d, facts).changes[1]).toMatchObject({
      component: 'firewall',
      action: {kind: 'activate', data: {reason: 'rules changed', missing: [], extra: []}},
    })
  })

  test("firewall: only the rules file's mode wrong: fixed in place, no activation (the live rules still match)", () => {
    const d = desired('lb1')
    const facts = converged(d)
    facts.files[UFW_RULES_FILE] = {...facts.files[UFW_RULES_FILE]!, mode: 0o644}
    expect(planHost(d, facts).changes).toEqual([expect.objectContaining({kind: 'file', action: 'attributes', path: UFW_RULES_FILE})])
  })

  test('without the firewall component no firewall change is ever planned', () => {
    const host = inv.hosts.find((h) => h.name === 'lb1')!
    const d = desiredState(inv, host, {material: MATERIAL, only: ['haproxy'], planners: planners()})
    expect(d.components).not.toContain('firewall')
    expect(d.live).toEqual([])
    const facts = converged(d)
    facts.live.firewall = ['status inactive']
    expect(planHost(d, facts).changes).toEqual([])
  })
})
