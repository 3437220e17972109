/*
 * Two load balancers sharing a floating address (issue 18), through the fake hosts with the real haproxy and
 * keepalived components: a web server's rolling change drains it in every load balancer; the load balancers'
 * own changes never run at once, the one not holding the address first, and the holder hands the address over
 * before a change that would interrupt it. With a recording failover provider: the order, and a failure that stops
 * the group.
 */
import {rmSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {HANDOVER, KEEPALIVED_CONF, vipHolders} from '../../src/components/keepalived/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import type {Change, Component, Failover} from '../../src/engine/contract.js'
import type {HostDesired, Stack} from '../../src/engine/desired.js'
import {type HostResult, type Planned, type RunOptions, applyBatch, runPlan} from '../../src/engine/run.js'
import type {Host} from '../../src/inventory/index.js'
import {FAST_HEALTH, type FakeFleet, type FakeHost, TEST_MATERIAL, fakeFleet, fastTimers, testInventory} from './support/fake-host.js'

const VIP = '10.77.0.100'
const ENV = 'FOOBAR_TEST_VRRP_PASSWORD'
const inv = testInventory(['lb1 10.77.0.11 lb', 'lb2 10.77.0.14 lb', 'web1 10.77.0.12 web', 'web2 10.77.0.13 web'], {
  lean: true,
  yaml: `lb: {vip: ${VIP}, vrrp: {password: {env: ${ENV}}}}\n`,
})
const LBS = ['lb1', 'lb2']
const host = (name: string) => inv.hosts.find((h) => h.name === name)!
const EDITED = 'server {\n    # edited by hand\n}\n'

let restoreTimers: () => void
beforeAll(() => {
  process.env[ENV] = 'vrrp-pw1'
  restoreTimers = fastTimers()
})
afterAll(() => {
  restoreTimers()
  delete process.env[ENV]
})

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))

const options = (fleet: FakeFleet, steps?: Array<[string, string]>, serial?: number): RunOptions => ({
  transport: fleet.transport,
  apply: true,
  concurrency: 4,
  serial,
  material: TEST_MATERIAL,
  health: FAST_HEALTH,
  lbGateMs: 1500,
  onStep: steps && ((host, step) => steps.push([host, step])),
})

let template: Promise<{fleet: FakeFleet; steps: Array<[string, string]>; results: HostResult[]}> | undefined

/** The first provision of the four hosts (nothing serves yet, nobody holds the address). */
function firstProvision() {
  template ??= (async () => {
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    const steps: Array<[string, string]> = []
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, steps))
    return {fleet, steps, results: r.hosts}
  })()
  return template
}

/** A copy of the provisioned fleet, both load balancers serving, lb1 holding the address. */
async function serving() {
  const fleet = (await firstProvision()).fleet.clone()
  fleets.push(fleet)
  for (const lb of LBS) await fleet.hosts[lb]!.listen('/run/haproxy/admin.sock')
  fleet.hosts.lb1!.addAddress(`${VIP}/24`)
  const steps: Array<[string, string]> = []
  const provision = async (serial?: number) =>
    Object.fromEntries((await runPlan(STACK, inv, inv.hosts, options(fleet, steps, serial))).hosts.map((h) => [h.host, h]))
  return {fleet, lb1: fleet.hosts.lb1!, lb2: fleet.hosts.lb2!, steps, provision}
}

/** Each load balancer's apply, as the span of its progress steps from the first change to `done`. */
function applySpans(steps: Array<[string, string]>): Array<{host: string; from: number; to: number}> {
  return LBS.flatMap((host) => {
    const idx = steps.flatMap(([h, s], i) =>
      h === host && !/^(connecting|gathering facts|\d+ changes planned|no changes)$/.test(s) ? [i] : [],
    )
    return idx.length ? [{host, from: idx[0]!, to: idx.at(-1)!}] : []
  }).sort((a, b) => a.from - b.from)
}

const overlap = (spans: Array<{from: number; to: number}>) => spans.some((s, i) => i > 0 && s.from <= spans[i - 1]!.to)

describe('two load balancers sharing a floating address (fake hosts)', () => {
  test('first provision: keepalived on both, its config 0640 and secret; the load balancers one at a time, in inventory order', async () => {
    const {fleet, steps, results} = await firstProvision()
    expect(results.map((r) => [r.host, r.status])).toEqual(LBS.concat(['web1', 'web2']).map((h) => [h, 'changed']))
    for (const lb of LBS) {
      const host = fleet.hosts[lb]!
      expect(host.installed('keepalived'), lb).toBe(true)
      expect(host.unit('keepalived'), lb).toEqual({enabled: 'enabled', active: 'active'})
      expect(host.mode(KEEPALIVED_CONF)).toBe(0o640)
      expect(host.file(KEEPALIVED_CONF)).toContain(`unicast_src_ip ${host.host.address}`)
      expect(host.file(KEEPALIVED_CONF)).toContain('auth_pass vrrp-pw1')
      // Checked by keepalived itself before it was moved into place.
      expect(host.journal().some((l) => l.startsWith('keepalived -t -f /etc/keepalived/.keepalived.conf.foobar-'))).toBe(true)
    }
    // The password travelled on stdin only, never on a command line, and is in no plan: the change is masked.
    expect(fleet.log().filter((c) => c.script.includes('vrrp-pw1'))).toEqual([])
    expect(fleet.log().some((c) => c.stdin?.includes('auth_pass vrrp-pw1'))).toBe(true)
    const change = results[0]!.changes.find((c) => c.kind === 'file' && c.path === KEEPALIVED_CONF)
    expect(change).toMatchObject({kind: 'file', diff: '(secret content not shown)'})
    const spans = applySpans(steps)
    expect(spans.map((s) => s.host)).toEqual(['lb1', 'lb2'])
    expect(overlap(spans)).toBe(false)
    // Each waited until it could take the address over before the next started.
    expect(steps.filter(([, s]) => s === 'waiting until it could take the floating address over').map(([h]) => h)).toEqual(LBS)
  })

  test("a web server's rolling change drains it in every load balancer, and enables it in every one", async () => {
    const {fleet, lb1, lb2, provision} = await serving()
    for (const w of ['web1', 'web2']) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
    const r = await provision()
    expect(Object.values(r).map((h) => [h.host, h.status])).toEqual([
      ['lb1', 'unchanged'],
      ['lb2', 'unchanged'],
      ['web1', 'changed'],
      ['web2', 'changed'],
    ])
    const events = fleet.log().flatMap((c) => {
      const m = /^echo 'set server web\/(\S+) state (\S+)'/.exec(c.script)
      if (m) return [`${c.host} ${m[2]} ${m[1]}`]
      return c.script === 'systemctl reload nginx' ? [`reload nginx on ${c.host}`] : []
    })
    expect(events).toEqual([
      'lb1 drain web1',
      'lb2 drain web1',
      'reload nginx on web1',
      'lb1 ready web1',
      'lb2 ready web1',
      'lb1 drain web2',
      'lb2 drain web2',
      'reload nginx on web2',
      'lb1 ready web2',
      'lb2 ready web2',
    ])
    for (const w of ['web1', 'web2']) for (const lb of [lb1, lb2]) expect(lb.haproxyAdminState(w)).toBe(0)
  })

  test('a change to both load balancers: the standby (lb2) first, then the holder, never at once; a reload hands nothing over', async () => {
    const {lb1, lb2, steps, provision} = await serving()
    for (const lb of [lb1, lb2]) lb.put('/etc/haproxy/haproxy.cfg', `${lb.file('/etc/haproxy/haproxy.cfg')!}# edited by hand\n`)
    const before = lb1.journal().length
    const r = await provision()
    expect([r.lb1!.status, r.lb2!.status]).toEqual(['changed', 'changed'])
    const spans = applySpans(steps)
    expect(spans.map((s) => s.host)).toEqual(['lb2', 'lb1'])
    expect(overlap(spans)).toBe(false)
    expect(
      lb1
        .journal()
        .slice(before)
        .filter((l) => /^systemctl (stop|start) keepalived/.test(l)),
    ).toEqual([])
    expect(lb1.hasAddress(VIP)).toBe(true)
  })

  test('--serial 1: the standby in the first batch, the holder in the last; results in inventory order', async () => {
    const {lb1, lb2, steps, provision} = await serving()
    for (const lb of [lb1, lb2]) lb.put('/etc/haproxy/haproxy.cfg', `${lb.file('/etc/haproxy/haproxy.cfg')!}# edited by hand\n`)
    const r = await provision(1)
    expect(Object.keys(r)).toEqual(['lb1', 'lb2', 'web1', 'web2'])
    expect(applySpans(steps).map((s) => s.host)).toEqual(['lb2', 'lb1'])
  })

  test('the holder hands the address over before a change that would interrupt it (packages), and takes part again after', async () => {
    const {lb1, lb2, provision} = await serving()
    // socat is missing on lb1: installing packages may restart what they belong to.
    rmSync(`${lb1.state}/dpkg/socat`)
    const before = lb1.journal().length
    // keepalived stopping on lb1 gives the address to lb2 (as VRRP would).
    lb1.on('systemctl stop keepalived', (_cmd, host) => {
      host.removeAddress(VIP)
      lb2.addAddress(`${VIP}/24`)
    })
    const r = await provision()
    expect(r.lb1).toMatchObject({status: 'changed'})
    expect(r.lb2).toMatchObject({status: 'unchanged'})
    const journal = lb1
      .journal()
      .slice(before)
      .filter((l) => /^(systemctl (stop|start) keepalived|apt-get install)/.test(l))
    // Started again by the change itself (keepalived was inactive when it planned again after the packages), then by
    // the rejoin (a no-op by then).
    expect(journal).toEqual([
      'systemctl stop keepalived',
      'apt-get install socat',
      'systemctl start keepalived',
      'systemctl start keepalived',
    ])
    // The peer served through the address before anything changed here.
    const served = lb1.commands(/--resolve www\.foobar\.test:443:10\.77\.0\.100 /)
    expect(served.length).toBeGreaterThan(0)
    expect(served[0]!.seq).toBeLessThan(lb1.commands(/apt-get.* install/)[0]!.seq)
    expect(lb2.hasAddress(VIP)).toBe(true)
  })

  test('who holds the address (verify and monitor status name it): one, none, or both at once', async () => {
    const {fleet, lb1, lb2} = await serving()
    const open = (h: Host) => fleet.transport.open(h)
    expect(await vipHolders(inv, open)).toEqual({holders: ['lb1'], unreachable: []})
    expect(await vipHolders(inv, open, [host('lb2')])).toEqual({holders: [], unreachable: []})
    lb2.addAddress(`${VIP}/24`)
    expect((await vipHolders(inv, open)).holders).toEqual(['lb1', 'lb2'])
    lb1.removeAddress(VIP)
    lb2.removeAddress(VIP)
    lb1.refusing = 'Connection refused'
    expect(await vipHolders(inv, open)).toEqual({holders: [], unreachable: ['lb1']})
  })

  test('no peer takes the address over: keepalived is started again on the holder, which is not changed', async () => {
    const {lb1, provision} = await serving()
    rmSync(`${lb1.state}/dpkg/socat`)
    const timeout = HANDOVER.timeoutMs
    HANDOVER.timeoutMs = 300
    // Nobody answers through the address.
    lb1.on(/--resolve www\.foobar\.test:443:10\.77\.0\.100 /, () => ({code: 7, stderr: 'curl: (7) Failed to connect\n'}))
    lb1.on('systemctl stop keepalived', (_cmd, host) => host.removeAddress(VIP))
    const r = await provision().finally(() => (HANDOVER.timeoutMs = timeout))
    expect(r.lb1).toMatchObject({status: 'failed'})
    expect(r.lb1!.error).toMatch(
      /^handing the floating address over failed: lb1: no other load balancer served 10\.77\.0\.100 within 0\.3s of keepalived stopping here \(keepalived started again\); not changed$/,
    )
    expect(lb1.installed('socat')).toBe(false)
    expect(lb1.unit('keepalived').active).toBe('active')
  })
})

describe('applyBatch with a recording failover provider', () => {
  const hostOf = (name: string) => inv.hosts.find((h) => h.name === name)!
  const change: Change = {kind: 'reload', name: 'haproxy', how: 'reload', reason: 'config changed', component: 'haproxy'}
  const planned = (names: string[]): Planned[] =>
    names.map((name) => ({plan: {host: name, changes: [change]}, desired: {host: hostOf(name)} as HostDesired, ms: 0}))

  function recording(holder: string, fails?: string) {
    const calls: string[] = []
    const failover: Failover = {
      holds: async (runner) => runner.host.name === holder,
      handOver: async ({runner}) => {
        calls.push(`hand over ${runner.host.name}`)
        return async () => void calls.push(`rejoin ${runner.host.name}`)
      },
      ready: async (runner) => void calls.push(`ready ${runner.host.name}`),
    }
    const c: Component = {name: 'vrrp', appliesTo: (h) => h.roles.includes('lb'), failover}
    const stack: Stack = {components: [c]}
    const applyOne = async (p: Planned): Promise<HostResult> => {
      calls.push(`apply ${p.plan!.host}`)
      await new Promise((r) => setTimeout(r, 1))
      const failed = p.plan!.host === fails
      return {
        host: p.plan!.host,
        status: failed ? 'failed' : 'changed',
        changes: p.plan!.changes,
        durationMs: 1,
        error: failed ? 'broken' : undefined,
      }
    }
    const run = (p: Planned[]) =>
      applyBatch(stack, inv, p, applyOne, true, {concurrency: 4}, async (h) => ({host: h}) as unknown as FakeHost)
    return {calls, run}
  }

  test('the holder last, handing over around its change; the others alongside', async () => {
    const {calls, run} = recording('lb1')
    const r = await run(planned(['lb1', 'lb2', 'web1']))
    expect(r.map((x) => [x.host, x.status])).toEqual([
      ['lb1', 'changed'],
      ['lb2', 'changed'],
      ['web1', 'changed'],
    ])
    const lbCalls = calls.filter((c) => !c.endsWith('web1'))
    expect(lbCalls).toEqual(['apply lb2', 'ready lb2', 'hand over lb1', 'apply lb1', 'rejoin lb1', 'ready lb1'])
  })

  test('the standby fails: the holder is not changed', async () => {
    const {calls, run} = recording('lb1', 'lb2')
    const r = await run(planned(['lb1', 'lb2']))
    expect(r.map((x) => [x.host, x.status, x.error])).toEqual([
      ['lb1', 'skipped', 'not run: lb2 failed first (hosts sharing a floating address change one at a time)'],
      ['lb2', 'failed', 'broken'],
    ])
    expect(calls).toEqual(['apply lb2'])
  })
})
