/*
 * Canary changes (`provision --canary N`): the judgement of what HAProxy counted (src/engine/canary.ts, pure), and
 * the roll (applyBatch in src/engine/run.ts) through the fake hosts with the real haproxy component, whose `show
 * stat` the fake LB answers from the traffic each test gives a server.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {backendCounters} from '../../src/components/haproxy/runtime.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {CANARY_THRESHOLDS, judgeCanary} from '../../src/engine/canary.js'
import type {BackendCounters} from '../../src/engine/contract.js'
import {type CanaryOptions, type RunOptions, runPlan} from '../../src/engine/run.js'
import {FAST_HEALTH, type FakeFleet, TEST_MATERIAL, fakeFleet, rollEvents, testInventory} from './support/fake-host.js'

const c = (name: string, responses: number, errors = 0, latencyMs: number | undefined = 5, up = true): BackendCounters => ({
  name,
  responses,
  errors,
  latencyMs,
  up,
})

describe('judging a canary (pure)', () => {
  const before = [[c('web1', 1000, 2), c('web2', 1000, 2), c('web3', 1000, 2)]]

  test('as good as the servers not changed: passes, with both groups counted over the watch only', () => {
    const j = judgeCanary(['web1'], ['web2', 'web3'], before, [[c('web1', 1100, 2), c('web2', 1100, 3), c('web3', 1100, 2)]], 30)
    expect(j.verdict).toBe('pass')
    expect(j.reasons).toEqual([])
    expect(j.canary).toMatchObject({responses: 100, errors: 0, errorRatio: 0})
    expect(j.baseline).toMatchObject({responses: 200, errors: 1, errorRatio: 0.005})
  })

  test('errors above the others by more than the threshold fail it, naming both ratios', () => {
    const j = judgeCanary(['web1'], ['web2', 'web3'], before, [[c('web1', 1100, 52), c('web2', 1100, 2), c('web3', 1100, 2)]], 30)
    expect(j.verdict).toBe('fail')
    expect(j.reasons).toEqual(['error ratio 50.0 % (50 of 100) against 0.0 % on the servers not changed (at most +1.0 %)'])
  })

  test('just within the threshold passes; just over fails', () => {
    const at = (errors: number) =>
      judgeCanary(['web1'], ['web2'], [[c('web1', 0), c('web2', 0)]], [[c('web1', 1000, errors), c('web2', 1000, 10)]], 30).verdict
    // baseline 1.0 %: up to 2.0 % passes
    expect(at(20)).toBe('pass')
    expect(at(21)).toBe('fail')
  })

  test('slower than twice the others plus 50 ms fails; a small absolute difference does not', () => {
    const after = (ms: number) => [[c('web1', 1100, 2, ms), c('web2', 1100, 2, 20), c('web3', 1100, 2, 20)]]
    expect(judgeCanary(['web1'], ['web2', 'web3'], before, after(90), 30).verdict).toBe('pass')
    const slow = judgeCanary(['web1'], ['web2', 'web3'], before, after(91), 30)
    expect(slow.verdict).toBe('fail')
    expect(slow.reasons[0]).toBe('average response time 91 ms against 20 ms on the servers not changed (at most 2× + 50 ms = 90 ms)')
  })

  test('too little traffic to judge fails, and says how to get a judgement', () => {
    const j = judgeCanary(['web1'], ['web2'], [[c('web1', 0), c('web2', 0)]], [[c('web1', 5), c('web2', 5)]], 30)
    expect(j.verdict).toBe('fail')
    expect(j.reasons[0]).toMatch(/^not enough traffic to judge: the canary answered 5 requests in 30 s \(at least 20 needed/)
    expect(judgeCanary(['web1'], ['web2'], [[c('web1', 0)]], [[c('web1', 0)]], 30, {...CANARY_THRESHOLDS, minRequests: 0}).verdict).toBe(
      'pass',
    )
  })

  test('a canary not up at the end fails, whatever its counters', () => {
    const j = judgeCanary(['web1'], ['web2'], before, [[c('web1', 1100, 2, 5, false), c('web2', 1100, 2)]], 30)
    expect(j.reasons).toEqual(['web1 not up in the load balancer at the end of the watch'])
  })

  test('two load balancers add up; a balancer restarted during the watch counts from zero', () => {
    const j = judgeCanary(
      ['web1'],
      ['web2'],
      [
        [c('web1', 500), c('web2', 500)],
        [c('web1', 40), c('web2', 40)],
      ],
      // the second balancer restarted: its counters went down
      [
        [c('web1', 600), c('web2', 600)],
        [c('web1', 10, 10), c('web2', 10)],
      ],
      30,
    )
    expect(j.canary).toMatchObject({responses: 110, errors: 10})
    expect(j.baseline).toMatchObject({responses: 110, errors: 0})
    expect(j.verdict).toBe('fail')
  })

  test('with no baseline (every server in the canary), errors are judged against none', () => {
    expect(judgeCanary(['web1'], [], [[c('web1', 0)]], [[c('web1', 100, 0)]], 30).verdict).toBe('pass')
    expect(judgeCanary(['web1'], [], [[c('web1', 0)]], [[c('web1', 100, 2)]], 30).verdict).toBe('fail')
  })

  test("HAProxy's show stat: the web backend's servers, responses from the hrsp classes, errors with failed connections", () => {
    const csv = [
      '# pxname,svname,qcur,scur,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,econ,eresp,rtime,status,',
      'https,FRONTEND,,0,0,900,0,10,5,0,,,,OPEN,',
      'web,web1,0,0,0,400,2,3,4,0,1,2,12,UP,',
      'web,web2,0,0,0,0,0,0,0,0,0,0,0,DRAIN,',
      'web,BACKEND,0,0,0,400,2,3,4,0,1,2,12,UP,',
      '',
    ].join('\n')
    expect(backendCounters(csv)).toEqual([
      {name: 'web1', responses: 409, errors: 7, latencyMs: 12, up: true},
      {name: 'web2', responses: 0, errors: 0, latencyMs: undefined, up: false},
    ])
  })
})

const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web', 'web2 10.77.0.13 web', 'web3 10.77.0.14 web'], {lean: true})
const EDITED = 'server {\n    # edited by hand\n}\n'
const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))
let template: Promise<FakeFleet> | undefined

const options = (fleet: FakeFleet, canary?: Partial<CanaryOptions>): RunOptions => ({
  transport: fleet.transport,
  apply: true,
  concurrency: 4,
  material: TEST_MATERIAL,
  health: FAST_HEALTH,
  lbGateMs: 1500,
  ...(canary ? {canary: {count: 1, waitMs: 300, sampleMs: 100, thresholds: {...CANARY_THRESHOLDS, minRequests: 10}, ...canary}} : {}),
})

/** The provisioned fleet, its LB serving, each web server's site edited by hand (the change to roll). */
async function serving() {
  template ??= (async () => {
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    await runPlan(STACK, inv, inv.hosts, options(fleet))
    return fleet
  })()
  const fleet = (await template).clone()
  fleets.push(fleet)
  const lb1 = fleet.hosts.lb1!
  await lb1.listen('/run/haproxy/admin.sock')
  for (const w of ['web1', 'web2', 'web3']) fleet.hosts[w]!.put(NGINX_SITE, EDITED)
  return {fleet, lb1}
}

describe('provision --canary through the real load balancer (fake hosts)', () => {
  // The provisioned fleet every test clones: a whole provision of four fake hosts (about 6 s alone, 30 s on a loaded
  // machine), made once here with its own time limit rather than inside the first test's.
  beforeAll(async () => {
    await serving()
  }, 300_000)

  test('a canary as good as the others: watched, then the rest roll one at a time', async () => {
    const {fleet, lb1} = await serving()
    for (const w of ['web1', 'web2', 'web3']) lb1.haproxyTraffic(w, 20, 0, 8)
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, {}))
    expect(r.canary).toMatchObject({verdict: 'pass', hosts: ['web1'], rolledBack: false, reasons: []})
    expect(r.hosts.map((h) => [h.host, h.status])).toEqual([
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
  })

  test('a canary that errors: its previous config back, in rotation again, nothing else changed, and why', async () => {
    const {fleet, lb1} = await serving()
    lb1.haproxyTraffic('web1', 20, 20, 8)
    for (const w of ['web2', 'web3']) lb1.haproxyTraffic(w, 20, 0, 8)
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, {}))
    expect(r.canary).toMatchObject({verdict: 'fail', hosts: ['web1'], rolledBack: true})
    const byHost = Object.fromEntries(r.hosts.map((h) => [h.host, h]))
    expect(byHost.web1!.status).toBe('failed')
    expect(byHost.web1!.error).toMatch(
      /^canary judged worse than the servers not changed: error ratio 50\.0 % \(\d+ of \d+\) against 0\.0 % on the servers not changed \(at most \+1\.0 %\); previous configuration restored, back in the load balancer$/,
    )
    expect(byHost.web2).toMatchObject({status: 'skipped', error: 'not run: the canary web1 failed'})
    expect(byHost.web3).toMatchObject({status: 'skipped', error: 'not run: the canary web1 failed'})
    // web1 serves its previous configuration again; the others never changed.
    for (const w of ['web1', 'web2', 'web3']) expect(fleet.hosts[w]!.file(NGINX_SITE)).toBe(EDITED)
    expect(rollEvents(fleet)).toEqual([
      'drain web1',
      'reload nginx on web1',
      'ready web1',
      'drain web1',
      'reload nginx on web1',
      'ready web1',
    ])
    for (const w of ['web1', 'web2', 'web3']) expect(lb1.haproxyAdminState(w)).toBe(0)
  })

  test('no traffic to judge by: put back (with --canary-min-requests 0 it is judged on health alone and passes)', async () => {
    const {fleet} = await serving()
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, {}))
    expect(r.canary).toMatchObject({verdict: 'fail', rolledBack: true})
    expect(fleet.hosts.web1!.file(NGINX_SITE)).toBe(EDITED)

    const again = await runPlan(STACK, inv, inv.hosts, options(fleet, {thresholds: {...CANARY_THRESHOLDS, minRequests: 0}}))
    expect(again.canary).toMatchObject({verdict: 'pass'})
    expect(again.hosts.map((h) => h.status)).toEqual(['unchanged', 'changed', 'changed', 'changed'])
  })

  test('two canaries: both change first and both are put back', async () => {
    const {fleet, lb1} = await serving()
    lb1.haproxyTraffic('web1', 20, 0, 8)
    lb1.haproxyTraffic('web2', 20, 0, 400)
    lb1.haproxyTraffic('web3', 20, 0, 8)
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, {count: 2}))
    expect(r.canary).toMatchObject({verdict: 'fail', hosts: ['web1', 'web2'], rolledBack: true})
    expect(r.canary && 'reasons' in r.canary ? r.canary.reasons[0] : '').toMatch(/^average response time 204 ms against 8 ms/)
    expect(r.hosts.map((h) => h.status)).toEqual(['unchanged', 'failed', 'failed', 'skipped'])
    for (const w of ['web1', 'web2', 'web3']) expect(fleet.hosts[w]!.file(NGINX_SITE)).toBe(EDITED)
  })

  test('a first provision (no load balancer serving yet): nothing to watch, said so, and the run goes on', async () => {
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, {}))
    expect(r.canary).toEqual({verdict: 'not-run', reason: 'no load balancer is serving yet: there is no traffic to watch', hosts: []})
    expect(r.hosts.every((h) => h.status === 'changed')).toBe(true)
  })
})
