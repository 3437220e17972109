/**
 * Canary changes (issue 22, item 2) on real hosts, under a bounded load through the LB (10 requests/s, a third of them to
 * `/shop/item`). A bad change — valid for `nginx -t`, healthy for /healthz, but answering 500 under /shop/ —
 * goes to the canary web1 only: HAProxy's counters show its errors against web2, foobar puts web1's previous config
 * back, re-enables it and exits 6 with web2 never changed. A good change (410 under /retired/) passes the canary and
 * rolls on to web2. Prints what users saw: 5xx answers during each run and after it.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {httpsProbe} from '../../src/util/probes.js'
import {foobar, foobarAsync, json, variant, provisionedLab} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, sshOk} from './support/lab.js'

const WAIT = '20s'
const RATE = 10

/** Requests through the LB at a fixed rate, alternating two paths; what each answered, counted. */
function load(domain: string, ca: string) {
  const t0 = Date.now()
  let stop = false
  const counts = new Map<string, number>()
  const inflight: Array<Promise<void>> = []
  const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
  const loop = (async () => {
    for (let i = 0; !stop && Date.now() - t0 < 300_000; i++) {
      const wait = t0 + (i * 1000) / RATE - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      // Every third request: not in step with round-robin over two servers, so each server gets both paths.
      const path = i % 3 === 2 ? '/shop/item' : '/'
      inflight.push(
        httpsProbe('10.77.0.11', 443, domain, path, ca).then(
          (r) => void count(`${path} ${r.status}`),
          () => void count(`${path} error`),
        ),
      )
    }
  })()
  return {
    async finish() {
      stop = true
      await loop
      await Promise.all(inflight)
      const all = [...counts.entries()].sort()
      const failed = all.filter(([k]) => / (5\d\d|error)$/.test(k)).reduce((n, [, v]) => n + v, 0)
      return {sent: all.reduce((n, [, v]) => n + v, 0), failed, counts: Object.fromEntries(all)}
    },
  }
}

type Canary = {
  verdict: string
  hosts: string[]
  reasons: string[]
  rolledBack?: boolean
  canary: {responses: number; errors: number}
  baseline?: {responses: number; errors: number}
}
type Result = {hosts: Array<{host: string; status: string; error?: string}>; canary?: Canary}

const site = (host: string) => sshOk(host, 'cat /etc/nginx/conf.d/foobar.conf')

describe.skipIf(!labIsUp())('canary changes', () => {
  let domain = ''
  let ca = ''

  beforeAll(async () => {
    ;({domain, ca} = await provisionedLab())
  })

  afterAll(() => {
    // Back to the lab inventory for the files after this one.
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  test('a bad change (500 under /shop/) is caught on the canary, put back, and web2 is never changed; exit 6', async () => {
    const bad = variant('canary-bad', (t) => t.replace('\nhosts:\n', '\nnginx:\n  responses: [{path: /shop/, status: 500}]\n\nhosts:\n'))
    const before = {web1: await site('web1'), web2: await site('web2')}
    const l = load(domain, ca)
    const r = await foobarAsync(['provision', '-i', bad, '--yes', '--json', '--canary', '1', '--canary-wait', WAIT])
    const during = await l.finish()
    console.log(
      `bad canary: exit ${r.code}; users saw ${during.failed} of ${during.sent} requests fail during the run: ${JSON.stringify(during.counts)}`,
    )
    expect(r.code, r.stdout + r.stderr).toBe(6)
    const result = json<Result>(r.stdout)
    const c = result.canary!
    console.log(
      `  canary ${c.hosts}: ${c.canary.errors}/${c.canary.responses} errors; not changed: ${c.baseline?.errors}/${c.baseline?.responses}; ${c.reasons.join('; ')}`,
    )
    expect(c).toMatchObject({verdict: 'fail', hosts: ['web1'], rolledBack: true})
    expect(c.reasons.join('\n')).toMatch(/^error ratio /m)
    const byHost = Object.fromEntries(result.hosts.map((h) => [h.host, h]))
    expect(byHost.web1).toMatchObject({status: 'failed'})
    expect(byHost.web1!.error).toMatch(/previous configuration restored, back in the load balancer$/)
    expect(byHost.web2).toMatchObject({status: 'skipped', error: 'not run: the canary web1 failed'})
    // web1 runs its previous config again; web2 was never touched.
    expect(await site('web1')).toBe(before.web1)
    expect(await site('web2')).toBe(before.web2)
    // Only /shop/ answers failed (the canary's, during the watch): `/` never did.
    expect(during.failed).toBeGreaterThan(0)
    expect(during.counts['/ 200']).toBeGreaterThan(0)
    expect(during.failed).toBe(during.counts['/shop/item 500'] ?? 0)
    // After it: nothing fails, both servers in rotation.
    const after = load(domain, ca)
    await new Promise((res) => setTimeout(res, 3000))
    const quiet = await after.finish()
    console.log(`  after the rollback: ${quiet.failed} of ${quiet.sent} failed`)
    expect(quiet.failed).toBe(0)
    const stat = await sshOk('lb1', "echo 'show servers state web' | sudo socat stdio /run/haproxy/admin.sock")
    expect(stat.split('\n').filter((line) => / web[12] \S+ 2 0 /.test(line))).toHaveLength(2)
  })

  test('a good change (410 under /retired/) passes the canary and rolls on to web2; no request fails', async () => {
    const good = variant('canary-good', (t) =>
      t.replace('\nhosts:\n', '\nnginx:\n  responses: [{path: /retired/, status: 410}]\n\nhosts:\n'),
    )
    const l = load(domain, ca)
    const r = await foobarAsync(['provision', '-i', good, '--yes', '--json', '--canary', '1', '--canary-wait', WAIT])
    const during = await l.finish()
    console.log(`good canary: exit ${r.code}; users saw ${during.failed} of ${during.sent} requests fail: ${JSON.stringify(during.counts)}`)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const result = json<Result>(r.stdout)
    expect(result.canary).toMatchObject({verdict: 'pass', hosts: ['web1'], reasons: []})
    console.log(
      `  canary: ${result.canary!.canary.errors}/${result.canary!.canary.responses} errors; not changed: ${result.canary!.baseline?.errors}/${result.canary!.baseline?.responses}`,
    )
    expect(Object.fromEntries(result.hosts.map((h) => [h.host, h.status]))).toMatchObject({web1: 'changed', web2: 'changed'})
    expect(during.failed).toBe(0)
    for (const w of ['web1', 'web2']) expect(await site(w)).toContain('location ^~ /retired/ {')
    const retired = await httpsProbe('10.77.0.11', 443, domain, '/retired/page', ca)
    expect(retired.status).toBe(410)
    expect(foobar(['plan', '-i', good, '--detailed-exitcode']).code).toBe(0)
  })
})
