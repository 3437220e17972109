import {describe, expect, test} from 'vitest'
import {installArgs} from '../../src/engine/apply.js'
import {parseInventory} from '../../src/inventory/index.js'
import {clock, upgradeWindows, windowsOverlap} from '../../src/inventory/upgrade-windows.js'
import {parseHold, parseStatus, planUpgradeUnits} from '../../src/components/upgrades/index.js'
import {renderPins, versionsOutcome} from '../../src/components/base/index.js'

const inventory = (hosts: string, extra = '') =>
  parseInventory(
    `site: {domain: www.example.com, email: admin@example.com}\nfirewall: {admin_cidrs: [192.0.2.0/24]}\n${extra}hosts:\n${hosts}`,
    '/srv/up.yml',
  )

const problems = (text: () => unknown): string[] => {
  try {
    text()
    return []
  } catch (error) {
    return ((error as {problems?: Array<{message: string}>}).problems ?? []).map((p) => p.message).concat((error as Error).message)
  }
}

const THREE = `  - {name: lb1, address: 10.0.0.1, roles: [lb]}
  - {name: web1, address: 10.0.0.2, roles: [web, db]}
  - {name: web2, address: 10.0.0.3, roles: [web, db]}
`
const DB = 'mysql: {primary: web1, replicas: [web2], replication_password: {env: R}}\n'

describe('upgrade windows (pure)', () => {
  test('hosts sharing a role never overlap; the replica before the primary; spread over the period from the start', () => {
    const w = upgradeWindows(inventory(THREE, DB))
    expect(w.get('web2')).toMatchObject({slot: 0, start: 120, minutes: 60, peers: ['web1']})
    expect(w.get('web1')).toMatchObject({slot: 1, start: 120 + 180, minutes: 60, peers: ['web2']})
    expect(w.get('lb1')).toMatchObject({slot: 0, peers: []})
    expect(windowsOverlap(w.get('web1')!, w.get('web2')!)).toBe(false)
  })

  test('a larger fleet: every pair sharing a role is disjoint, every replica before the primary', () => {
    const hosts = Array.from(
      {length: 20},
      (_, i) => `  - {name: h${i}, address: 10.0.1.${i + 1}, roles: [${i < 2 ? 'lb' : i < 12 ? 'web' : i < 16 ? 'db' : 'web, db'}]}`,
    )
    const inv = inventory(
      `${hosts.join('\n')}\n`,
      'mysql: {primary: h12, replicas: [h13, h14, h15, h16, h17, h18, h19], replication_password: {env: R}}\nupgrades: {start: "23:00", period_hours: 24}\n',
    )
    const w = upgradeWindows(inv)
    for (const a of inv.hosts)
      for (const b of inv.hosts) {
        if (a === b || !a.roles.some((r) => b.roles.includes(r))) continue
        expect(windowsOverlap(w.get(a.name)!, w.get(b.name)!), `${a.name} ${b.name}`).toBe(false)
      }
    const since = (m: number) => (m - 23 * 60 + 1440) % 1440
    for (const r of ['h13', 'h14', 'h15', 'h16', 'h17', 'h18', 'h19'])
      expect(since(w.get(r)!.start)).toBeLessThan(since(w.get('h12')!.start))
    // A window past midnight is still one window (23:00 + ...).
    expect(clock(1440 + 30)).toBe('00:30')
  })

  test('overlap on the 24-hour circle', () => {
    expect(windowsOverlap({start: 1410, minutes: 60}, {start: 10, minutes: 10})).toBe(true)
    expect(windowsOverlap({start: 1410, minutes: 30}, {start: 0, minutes: 10})).toBe(false)
    expect(windowsOverlap({start: 100, minutes: 10}, {start: 109, minutes: 10})).toBe(true)
    expect(windowsOverlap({start: 100, minutes: 10}, {start: 110, minutes: 10})).toBe(false)
  })

  test('windows that cannot fit, or settings that differ within a role, are inventory errors', () => {
    expect(problems(() => inventory(THREE, `${DB}upgrades: {period_hours: 1, window_minutes: 45}\n`)).join('\n')).toMatch(
      /windows of web2 \(02:00-02:45\) and web1 \(02:30-03:15\) overlap/,
    )
    const many = Array.from({length: 8}, (_, i) => `  - {name: w${i}, address: 10.0.2.${i + 1}, roles: [web]}`).join('\n')
    expect(problems(() => inventory(`${many}\n`, 'upgrades: {period_hours: 1}\n')).join('\n')).toMatch(
      /8 upgrade slots in 1 h leave 7 minutes/,
    )
    expect(
      problems(() =>
        inventory(
          THREE.replace('roles: [web, db]}\n  - {name: web2', 'roles: [web, db], upgrades: {start: "04:00"}}\n  - {name: web2'),
          DB,
        ),
      ).join('\n'),
    ).toMatch(/share the role db, web but not upgrades.start/)
  })

  test('skipping unattended_upgrades leaves the host out', () => {
    const inv = inventory(
      THREE.replace('roles: [lb]}', 'roles: [lb], hardening: {skip: {unattended_upgrades: "upgraded by the image pipeline"}}}'),
      DB,
    )
    expect(upgradeWindows(inv).has('lb1')).toBe(false)
  })
})

describe('pinned versions', () => {
  test('host pins override role pins; strict names and versions', () => {
    const inv = inventory(
      THREE.replace('roles: [web, db]}\n  - {name: web2', 'roles: [web, db], pins: {nginx: "1.22.1-9"}}\n  - {name: web2'),
      `${DB}roles: {web: {pins: {nginx: "1.22.1-9+deb12u1", tzdata: "2025b-0+deb12u1"}}}\n`,
    )
    const web1 = inv.hosts.find((h) => h.name === 'web1')!
    const web2 = inv.hosts.find((h) => h.name === 'web2')!
    expect(web1.pins).toEqual({nginx: '1.22.1-9', tzdata: '2025b-0+deb12u1'})
    expect(web2.pins).toEqual({nginx: '1.22.1-9+deb12u1', tzdata: '2025b-0+deb12u1'})
    expect(renderPins(web1)).toContain('Package: nginx\nPin: version 1.22.1-9\nPin-Priority: 1001\n')
    for (const bad of ['1.0; rm -rf /', '$(id)', '1.0\nPackage: *', 'abc', '1.0 ', '*', '1:', '1.0-']) {
      expect(problems(() => inventory(THREE, `${DB}pins: {nginx: ${JSON.stringify(bad)}}\n`)).join('\n'), bad).toMatch(
        /must be a Debian version/,
      )
    }
    for (const bad of ['ngin*', '/nginx/', 'Nginx', 'a', 'x y']) {
      expect(problems(() => inventory(THREE, `${DB}pins: {${JSON.stringify(bad)}: "1.0"}\n`)).join('\n'), bad).toMatch(
        /must be a Debian package name/,
      )
    }
    expect(problems(() => inventory(THREE, `${DB}pins: {nginx: "1:1.22.1-9+deb12u1~bpo12.1"}\n`))).toEqual([])
  })

  test('apt-get gets name=version for the pinned, and verify reports versions', () => {
    expect(installArgs({install: ['curl', 'nginx'], versions: [{name: 'nginx', from: '1.2-2', to: '1.2-1'}]})).toEqual([
      'curl',
      'nginx=1.2-1',
    ])
    const inv = inventory(THREE, `${DB}pins: {tzdata: "2025b-0+deb12u1"}\n`)
    const web1 = inv.hosts.find((h) => h.name === 'web1')!
    expect(versionsOutcome(web1, {tzdata: '2025b-0+deb12u1', nginx: '1.22.1-9'})).toEqual({
      ok: true,
      detail: 'nginx 1.22.1-9, tzdata 2025b-0+deb12u1 (pinned)',
    })
    expect(versionsOutcome(web1, {tzdata: '2026a-0+deb12u1'}).ok).toBe(false)
  })
})

describe('the upgrade gate', () => {
  test('status and hold files parse; timers masked by an image are unmasked and started', () => {
    expect(parseStatus('foobar-upgrade-status 1\nhost web1\nstate broken\ntime 5\nfailed nginx\npkg nginx 1 2\n')).toEqual({
      state: 'broken',
      time: 5,
      failed: 'nginx',
      packages: [{name: 'nginx', from: '1', to: '2'}],
    })
    expect(parseStatus('garbage').state).toBe('none')
    expect(parseHold('# x\n\nPackage: nginx\nPin: version 2\nPin-Priority: -1\n')).toEqual([{name: 'nginx', version: '2'}])
    const masked = [
      'unit apt-daily.timer masked inactive',
      'unit apt-daily-upgrade.timer masked inactive',
      'unit foobar-upgrade-boot.service enabled inactive',
    ]
    expect(planUpgradeUnits(masked, undefined).map((a) => a.kind)).toEqual(['timers'])
    const fine = [
      'unit apt-daily.timer enabled active',
      'unit apt-daily-upgrade.timer enabled active',
      'unit foobar-upgrade-boot.service enabled inactive',
    ]
    expect(planUpgradeUnits(fine, undefined)).toEqual([])
    expect(planUpgradeUnits(fine, 'window changed').map((a) => a.kind)).toEqual(['timers'])
  })
})

describe('role diversity in the examples', () => {
  test('foobar-split.yml: the database on its own hosts, each tier upgrading one host at a time', async () => {
    const {loadInventory} = await import('../../src/inventory/index.js')
    const inv = await loadInventory('inventories/foobar-split.yml')
    const roles = Object.fromEntries(inv.hosts.map((h) => [h.name, h.roles]))
    expect(roles).toEqual({lb1: ['lb'], web1: ['web'], web2: ['web'], db1: ['db'], db2: ['db']})
    const w = upgradeWindows(inv)
    expect(clock(w.get('db2')!.start)).toBe('02:00')
    expect(clock(w.get('db1')!.start)).toBe('05:00')
    expect(windowsOverlap(w.get('web1')!, w.get('web2')!)).toBe(false)
  })
})
