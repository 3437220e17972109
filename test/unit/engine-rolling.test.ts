/*
 * Rolling changes behind a load balancer (applyBatch in src/engine/run.ts). Through the fake hosts with the real
 * haproxy component (its runtime API answered by the fake LB's socat): web servers are drained, changed and
 * enabled one at a time; one that fails its health gate stays drained and stops the roll. With a fake balancer:
 * the load balancer's side of the gate, --serial groups, and what is never drained.
 */
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {drain} from '../../src/components/haproxy/runtime.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import type {Balancer, Change, Component} from '../../src/engine/contract.js'
import type {HostDesired, Stack} from '../../src/engine/desired.js'
import {type HostResult, type Planned, type RunOptions, applyBatch, runPlan} from '../../src/engine/run.js'
import type {Host} from '../../src/inventory/index.js'
import {
  FAST_HEALTH,
  type FakeFleet,
  FakeHost,
  TEST_MATERIAL,
  failingCheck,
  fakeFleet,
  rollEvents,
  testInventory,
} from './support/fake-host.js'

const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web', 'web2 10.77.0.13 web', 'web3 10.77.0.14 web'], {lean: true})
const WEBS = ['web1', 'web2', 'web3']
const DRAINED = '/var/lib/foobar/drained'
const EDITED = 'server {\n    # edited by hand\n}\n'

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))
let template: Promise<FakeFleet> | undefined

/** A copy of the provisioned fleet, its load balancer serving, and a provision of every host. */
async function serving() {
  template ??= (async () => {
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    // The first provision: nothing is serving yet, so nothing is drained.
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet))
    expect(r.hosts.map((h) => h.status)).toEqual(['changed', 'changed', 'changed', 'changed'])
    expect(fleet.hosts.lb1!.journal().filter((l) => /^haproxy (drain|ready) /.test(l))).toEqual([])
    return fleet
  })()
  const fleet = (await template).clone()
  fleets.push(fleet)
  const lb1 = fleet.hosts.lb1!
  await lb1.listen('/run/haproxy/admin.sock')
  const provision = async () => Object.fromEntries((await runPlan(STACK, inv, inv.hosts, options(fleet))).hosts.map((h) => [h.host, h]))
  return {fleet, lb1, provision}
}

const options = (fleet: FakeFleet): RunOptions => ({
  transport: fleet.transport,
  apply: true,
  concurrency: 4,
  material: TEST_MATERIAL,
  health: FAST_HEALTH,
  lbGateMs: 1500,
})

describe('a roll through the real load balancer (haproxy runtime API)', () => {
  test('healthy: each web server is drained, changed and enabled again before the next one is drained', async () => {
    const {fleet, lb1, provision} = await serving()
    for (const w of WEBS) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
    const r = await provision()
    expect(Object.values(r).map((h) => [h.host, h.status])).toEqual([
      ['lb1', 'unchanged'],
      ['web1', 'changed'],
      ['web2', 'changed'],
      ['web3', 'changed'],
    ])
    expect(rollEvents(fleet)).toEqual([
      'drain web1',
      'reload nginx on web1',
      'ready web1',
      'drain web2',
      'reload nginx on web2',
      'ready web2',
      'drain web3',
      'reload nginx on web3',
      'ready web3',
    ])
    for (const w of WEBS) expect(lb1.haproxyAdminState(w)).toBe(0)
    expect(lb1.ls(DRAINED)).toEqual([])
  })

  test('a server that fails its health gate and is not healthy at the LB either stays drained and stops the roll; the ones done are back in rotation', async () => {
    const {fleet, lb1, provision} = await serving()
    for (const w of WEBS) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
    const broken = fleet.hosts.web2!.on(/curl -fsSk -o \/dev\/null --resolve/, (c) =>
      failingCheck(c.script, 'curl: (22) The requested URL returned error: 502\n'),
    )
    // HAProxy's own check of web2 fails too: it is not healthy on its previous configuration either.
    lb1.fail('haproxy-down-web2')

    const r = await provision()
    expect(r.web1).toMatchObject({status: 'changed'})
    expect(r.web2).toMatchObject({status: 'failed'})
    expect(r.web2!.error).toMatch(
      /^web2: nginx unhealthy after the change \(health check failed: curl: \(22\) .*\); previous config restored; left drained in the load balancer \(not healthy\)$/,
    )
    expect(r.web3).toMatchObject({status: 'skipped', error: 'not run: the roll stopped at web2'})
    expect(rollEvents(fleet)).toEqual([
      'drain web1',
      'reload nginx on web1',
      'ready web1',
      // web2: changed, unhealthy, its previous config reloaded; tried in rotation, not UP: drained again.
      'drain web2',
      'reload nginx on web2',
      'reload nginx on web2',
      'ready web2',
      'drain web2',
    ])
    expect(lb1.haproxyAdminState('web1')).toBe(0)
    expect(lb1.haproxyAdminState('web2')).toBe(8)
    expect(lb1.haproxyAdminState('web3')).toBe(0)
    expect(lb1.ls(DRAINED)).toEqual(['web2'])
    expect(fleet.hosts.web3!.file(NGINX_SITE)).toBe(EDITED)
    lb1.heal('haproxy-down-web2')

    // Fixed: the next provision rolls the rest, and web2 is back in rotation.
    broken()
    const seen = rollEvents(fleet).length
    const again = await provision()
    expect(Object.values(again).map((h) => h.status)).toEqual(['unchanged', 'unchanged', 'changed', 'changed'])
    expect(rollEvents(fleet).slice(seen)).toEqual([
      'drain web2',
      'reload nginx on web2',
      'ready web2',
      'drain web3',
      'reload nginx on web3',
      'ready web3',
    ])
    for (const w of WEBS) expect(lb1.haproxyAdminState(w)).toBe(0)
    expect(lb1.ls(DRAINED)).toEqual([])
  })

  test('back to full strength: a server whose change failed but whose previous configuration serves is back in rotation; the roll stops', async () => {
    const {fleet, lb1, provision} = await serving()
    for (const w of WEBS) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
    // The new config fails web2's own health gate; restored, HAProxy sees it UP again.
    fleet.hosts.web2!.on(/curl -fsSk -o \/dev\/null --resolve/, (c) =>
      failingCheck(c.script, 'curl: (22) The requested URL returned error: 502\n'),
    )
    const r = await provision()
    expect(r.web2).toMatchObject({status: 'failed'})
    expect(r.web2!.error).toMatch(/previous config restored; back in the load balancer on its previous configuration$/)
    expect(r.web3).toMatchObject({status: 'skipped', error: 'not run: the roll stopped at web2'})
    for (const w of WEBS) expect(lb1.haproxyAdminState(w)).toBe(0)
    expect(lb1.ls(DRAINED)).toEqual([])
  })

  test("the load balancer's own change comes after the web tier, and is skipped when the roll stops", async () => {
    const {fleet, lb1, provision} = await serving()
    for (const w of WEBS) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
    const cfg = lb1.file('/etc/haproxy/haproxy.cfg')!
    lb1.put('/etc/haproxy/haproxy.cfg', `${cfg}# edited by hand\n`)
    fleet.hosts.web1!.on(/curl -fsSk -o \/dev\/null --resolve/, (c) => failingCheck(c.script, 'curl: (22) 502\n'))
    const r = await provision()
    expect(r.web1).toMatchObject({status: 'failed'})
    expect(r.lb1).toMatchObject({status: 'skipped', error: 'not run: the roll stopped at web1'})
    // The LB keeps the configuration its backends serve.
    expect(lb1.file('/etc/haproxy/haproxy.cfg')).toBe(`${cfg}# edited by hand\n`)
  })

  test('a server left drained (a roll cut short right after draining it) is enabled by the next provision once its host is converged', async () => {
    const {fleet, lb1, provision} = await serving()
    // What foobar did on the load balancer before it was killed.
    await drain(lb1, 'web2')
    expect(lb1.haproxyAdminState('web2')).toBe(8)
    expect(lb1.ls(DRAINED)).toEqual(['web2'])
    const seen = rollEvents(fleet).length
    const r = await provision()
    expect(Object.values(r).map((h) => h.status)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged'])
    expect(rollEvents(fleet).slice(seen)).toEqual(['ready web2'])
    expect(lb1.haproxyAdminState('web2')).toBe(0)
    expect(lb1.ls(DRAINED)).toEqual([])
  })
})

describe('a load balancer that cannot drain a server', () => {
  // BUG (src/engine/run.ts, applyBatch: `await balancer.drain(lb, ...)` is outside any try): a failing drain
  // rejects runPlan as a whole, so provision reports no host at all, not even the ones it already changed.
  test('that server is not changed and fails, the roll stops there, and every host is reported', async () => {
    const {fleet, lb1, provision} = await serving()
    for (const w of WEBS) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
    lb1.on(/^echo 'set server web\/web1 state drain'/, () => ({
      code: 1,
      stderr: 'socat: E connect(5, AF=1 "/run/haproxy/admin.sock", 26): Permission denied\n',
    }))
    const r = await provision().catch((e: Error) => ({thrown: e.message}))
    expect(r).not.toHaveProperty('thrown')
    const hosts = r as Awaited<ReturnType<typeof provision>>
    expect(hosts.web1).toMatchObject({status: 'failed', error: expect.stringContaining('Permission denied')})
    expect(fleet.hosts.web1!.file(NGINX_SITE)).toBe(EDITED)
    expect(hosts.web2).toMatchObject({status: 'skipped', error: 'not run: the roll stopped at web1'})
    expect(hosts.web3).toMatchObject({status: 'skipped'})
  })
})

describe('applyBatch with a recording balancer', () => {
  const hostOf = (name: string) => inv.hosts.find((h) => h.name === name)!
  const lbRunner = new FakeHost(hostOf('lb1'), {shell: false})
  afterAll(() => lbRunner.cleanup())

  function recordingBalancer(o: {serving?: boolean; enableFails?: string} = {}) {
    const calls: string[] = []
    const drained = new Set<string>()
    const balancer: Balancer = {
      isBackend: (h) => h.roles.includes('web'),
      state: async () => {
        calls.push('state')
        return {serving: o.serving ?? true, drained: [...drained]}
      },
      drain: async (_lb, backend) => {
        calls.push(`drain ${backend}`)
        drained.add(backend)
      },
      enable: async (_lb, backend) => {
        calls.push(`enable ${backend}`)
        if (backend === o.enableFails) throw new Error(`lb1: backend ${backend} not UP after 30s (op state 0, admin state 0)`)
        drained.delete(backend)
      },
    }
    const lb: Component = {name: 'lb', appliesTo: (h) => h.roles.includes('lb'), balancer}
    const replication: Component = {name: 'replication', rolling: 'none', appliesTo: () => true}
    const stack: Stack = {components: [lb, replication]}
    return {calls, stack}
  }

  const fileChange = (component: string): Change => ({
    kind: 'file',
    path: '/etc/x',
    action: 'update',
    detail: 'content',
    file: {path: '/etc/x', content: '', mode: 0o644, owner: 'root', group: 'root', component},
    component,
  })
  const planned = (names: string[], component = 'nginx'): Planned[] =>
    names.map((name) => ({plan: {host: name, changes: [fileChange(component)]}, desired: {host: hostOf(name)} as HostDesired, ms: 0}))

  async function batch(stack: Stack, calls: string[], p: Planned[], serial?: number): Promise<HostResult[]> {
    const applyOne = async (x: Planned): Promise<HostResult> => {
      calls.push(`apply ${x.plan!.host}`)
      await new Promise((r) => setTimeout(r, 1))
      return {host: x.plan!.host, status: 'changed', changes: x.plan!.changes, durationMs: 1}
    }
    return applyBatch(stack, inv, p, applyOne, true, {concurrency: 4, serial}, async (h: Host) => {
      expect(h.name).toBe('lb1')
      return lbRunner
    })
  }

  test("the balancer's side of the gate fails: that server stays drained, the roll stops, the server done before is enabled", async () => {
    const {calls, stack} = recordingBalancer({enableFails: 'web2'})
    const r = await batch(stack, calls, planned(WEBS))
    expect(r.map((x) => [x.host, x.status, x.error])).toEqual([
      ['web1', 'changed', undefined],
      ['web2', 'failed', 'health gate at the load balancer: lb1: backend web2 not UP after 30s (op state 0, admin state 0); left drained'],
      ['web3', 'skipped', 'not run: the roll stopped at web2'],
    ])
    expect(calls).toEqual(['state', 'drain web1', 'apply web1', 'enable web1', 'drain web2', 'apply web2', 'enable web2'])
  })

  test('--serial 2: two servers drained and changed at a time', async () => {
    const {calls, stack} = recordingBalancer()
    const r = await batch(stack, calls, planned(WEBS), 2)
    expect(r.map((x) => x.status)).toEqual(['changed', 'changed', 'changed'])
    expect(calls).toEqual([
      'state',
      'drain web1',
      'drain web2',
      'apply web1',
      'apply web2',
      'enable web1',
      'enable web2',
      'drain web3',
      'apply web3',
      'enable web3',
    ])
  })

  test('nothing is drained before a load balancer serves, nor for a change that does not disturb traffic', async () => {
    const first = recordingBalancer({serving: false})
    await batch(first.stack, first.calls, planned(WEBS))
    expect(first.calls).toEqual(['state', 'apply web1', 'apply web2', 'apply web3'])

    const db = recordingBalancer()
    const r = await batch(db.stack, db.calls, planned(['web1', 'web2'], 'replication'))
    expect(r.map((x) => x.status)).toEqual(['changed', 'changed'])
    expect(db.calls).toEqual(['state', 'apply web1', 'apply web2'])
  })
})
