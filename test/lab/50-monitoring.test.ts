/**
 * Monitoring (issue 9) on real hosts. The lab is restarted with a 4th host, extra1 (10.77.0.14), which a variant of
 * the lab inventory makes the monitoring server; afterwards the lab goes back to the three hosts of lab.yml (the
 * earlier and later lab files expect exactly those). Shows: every client scraped with Prometheus's targets all
 * up, exporter ports refused from anywhere but the monitoring server, `monitor qps` within 10 % of a generated
 * load at the LB and summed over the web servers, a log line from a web server at the collector, and a second
 * provision with 0 changes.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {prepareMaterial} from '../../src/components/index.js'
import {httpsProbe} from '../../src/util/probes.js'
import {loadInventory} from '../../src/inventory/index.js'
import {down, up} from '../../src/lab/index.js'
import {foobar, foobarAsync, json, sleep, variant} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, labSpec, paths, ssh, sshOk} from './support/lab.js'
import {probe} from './support/probe.js'

const LB = '10.77.0.11'
const WEB1 = '10.77.0.12'
const MON = '10.77.0.14'
/** The generated load: bounded in rate, count and time, to the lab's LB only. */
const RATE = 30
const LOAD_SECONDS = 15

/** Request i leaves at t0 + i/RATE whatever the others do (no coordinated omission); RATE * LOAD_SECONDS in all. */
async function paceLoad(domain: string, ca: string): Promise<{sent: number; ok: number}> {
  const t0 = Date.now()
  const total = RATE * LOAD_SECONDS
  let ok = 0
  const inflight: Array<Promise<void>> = []
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / RATE - Date.now()
    if (wait > 0) await sleep(wait)
    inflight.push(
      httpsProbe(LB, 443, domain, '/', ca, 5000).then(
        (r) => void (r.status === 200 && ok++),
        () => undefined,
      ),
    )
  }
  await Promise.all(inflight)
  return {sent: total, ok}
}

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = await get()
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s; last: ${JSON.stringify(last).slice(0, 2000)}`)
    await sleep(2000)
    last = await get()
  }
  return last
}

interface Client {
  host: string
  job: string
  up: boolean
  lastScrape?: string
  version?: string
}

describe.skipIf(!labIsUp())('monitoring', () => {
  let inv: string
  let secrets: string

  beforeAll(async () => {
    // A 4th lab host: the lab boots exactly the hosts it is given, so it comes down (host state kept) and up again.
    await down()
    await up(await labSpec(), {hosts: 4})
    secrets = mkdtempSync(join(tmpdir(), 'foobar-mon-'))
    writeFileSync(join(secrets, 'monitor_password'), `${randomBytes(18).toString('base64url')}\n`, {mode: 0o600})
    inv = variant('monitoring', (t) =>
      t
        .replace(/(  replication_password: .*\n)/, `$1  monitor_password: {file: ${join(secrets, 'monitor_password')}}\n`)
        .replace(/\s*$/, '\n  - name: extra1\n    address: 10.77.0.14\n    roles: [monitoring]\n'),
    )
    const r = foobar(['provision', '-i', inv, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  afterAll(async () => {
    // Back to lab.yml's three hosts, with nothing of extra1 left for the files that follow.
    await down()
    rmSync(paths.host('extra1').dir, {recursive: true, force: true})
    await up(await labSpec())
    if (secrets) rmSync(secrets, {recursive: true, force: true})
  })

  test('every client is scraped: Prometheus has all targets up, with versions', async () => {
    const status = await waitFor(
      'all targets up',
      async () => {
        const r = await foobarAsync(['monitor', 'status', '-i', inv, '--json'])
        return {code: r.code, body: r.stdout ? json<{source: string; clients: Client[]}>(r.stdout) : undefined}
      },
      (s) => s.code === 0,
      90_000,
    )
    expect(status.body!.source).toBe('prometheus')
    const clients = status.body!.clients
    expect(clients.map((c) => `${c.host} ${c.job}`).sort()).toEqual([
      'extra1 node',
      'lb1 haproxy',
      'lb1 node',
      'web1 mysqld',
      'web1 nginx',
      'web1 node',
      'web2 mysqld',
      'web2 nginx',
      'web2 node',
    ])
    for (const c of clients) {
      expect(c, `${c.host} ${c.job}`).toMatchObject({up: true, version: expect.stringMatching(/\d/)})
      expect(Date.now() - Date.parse(c.lastScrape!), `${c.host} ${c.job} last scrape`).toBeLessThan(60_000)
    }
    // Straight from the API too: every active target up, none left over.
    const targets = JSON.parse(await sshOk('extra1', `curl -fsS http://${MON}:9090/api/v1/targets`)) as {
      data: {activeTargets: Array<{health: string}>}
    }
    expect(targets.data.activeTargets.length).toBe(10) // the 9 clients and Prometheus itself
    expect(targets.data.activeTargets.every((t) => t.health === 'up')).toBe(true)
    // The mysqld exporter logs in with its own account (mysql_up 1), which has no more than it needs.
    expect(await sshOk('extra1', `curl -fsS http://${WEB1}:9104/metrics | grep '^mysql_up '`)).toBe('mysql_up 1\n')
    const grants = await sshOk('web1', `sudo mysql -N -B -e "SHOW GRANTS FOR 'prometheus'@'localhost'"`)
    expect(grants).toMatch(/GRANT PROCESS, (BINLOG MONITOR|REPLICATION CLIENT).* ON \*\.\*/)
    expect(grants).not.toMatch(/ALL PRIVILEGES|SUPER|GRANT SELECT ON \*\.\*/)
  })

  test('without a monitoring host, monitor status reads the clients over SSH', async () => {
    const r = await foobarAsync(['monitor', 'status', '-i', LAB_INVENTORY, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const body = json<{source: string; clients: Client[]}>(r.stdout)
    expect(body.source).toBe('ssh')
    expect(body.clients.length).toBe(8)
  })

  test('exporter ports are refused from anywhere but the monitoring server (and listen on the private address only)', async () => {
    const ports: Array<[string, string, number]> = [
      ['lb1', LB, 9100],
      ['lb1', LB, 8405],
      ['web1', WEB1, 9100],
      ['web1', WEB1, 9113],
      ['web1', WEB1, 9104],
    ]
    const wrong: string[] = []
    for (const [, address, port] of ports) {
      for (const [from, want] of [
        ['extra1', 'open'],
        ['web2', 'filtered'],
        [address === LB ? 'web1' : 'lb1', 'filtered'],
      ] as const) {
        const got = await probe(from, address, port)
        if (got !== want) wrong.push(`${from} -> ${address}:${port}: ${got}, want ${want}`)
      }
    }
    // Prometheus and the collector: not open to the other hosts beyond what they need.
    if ((await probe('web1', MON, 9090)) !== 'filtered') wrong.push('web1 -> extra1:9090 not filtered')
    if ((await probe('web1', MON, 6514)) !== 'open') wrong.push('web1 -> extra1:6514 not open (log forwarding)')
    expect(wrong).toEqual([])
    // Bound to the private address: nothing on localhost.
    for (const [host, , port] of ports) {
      expect((await ssh(host, `curl -fsS -o /dev/null http://127.0.0.1:${port}/metrics`)).code, `${host} 127.0.0.1:${port}`).not.toBe(0)
    }
  })

  test(`monitor qps reports a generated ${RATE} req/s within 10 %, at the LB and summed over the web servers`, async () => {
    const lab = await loadInventory(inv)
    const ca = prepareMaterial(lab).backendCa
    const load = paceLoad(lab.site.domain, ca)
    // The 10 s window sits inside the 15 s of load, clear of its ramp-up and tail.
    await sleep(2500)
    const qps = await foobarAsync(['monitor', 'qps', '-i', inv, '--window', '10s', '--json'])
    const sent = await load
    expect(qps.code, qps.stdout + qps.stderr).toBe(0)
    expect(sent.ok).toBe(sent.sent)
    const report = json<{lb: Array<{host: string; qps: number}>; web: Array<{host: string; qps: number}>; webTotal: number}>(qps.stdout)
    console.log(
      `monitor qps under ${RATE} req/s: lb ${report.lb[0]!.qps}, web ${report.web.map((w) => `${w.host} ${w.qps}`).join(', ')} (sum ${report.webTotal})`,
    )
    expect(Math.abs(report.lb[0]!.qps - RATE) / RATE).toBeLessThan(0.1)
    // nginx also counts HAProxy's health checks (2 per 2 s) and the exporters' reads: a little above the rate.
    expect(Math.abs(report.webTotal - RATE) / RATE).toBeLessThan(0.1)
    expect(report.web.map((w) => w.host).sort()).toEqual(['web1', 'web2'])
  })

  test('a log line written on a web server appears at the collector; nginx and HAProxy logs arrive too', async () => {
    const marker = `foobar-test-${randomBytes(8).toString('hex')}`
    await sshOk('web1', `logger -t foobar-test ${marker}`)
    await waitFor(
      'the line at the collector',
      async () => (await ssh('extra1', `sudo grep -rlF ${marker} /var/log/remote/web1/`)).stdout,
      (out) => out.includes('/var/log/remote/web1/'),
      60_000,
    )
    // The load above went through HAProxy to nginx: both logged it, and both logs were forwarded.
    const files = await waitFor(
      'nginx and HAProxy logs at the collector',
      async () => (await ssh('extra1', 'sudo find /var/log/remote -name "*.log"')).stdout,
      (out) => out.includes('/var/log/remote/web1/nginx-access.log') && out.includes('/var/log/remote/lb1/haproxy.log'),
      60_000,
    )
    expect(files).toContain('/var/log/remote/web2/nginx-access.log')
  })

  test('verify: every client answers from the monitoring server, every host logs to the collector', () => {
    const r = foobar(['verify', '-i', inv, '--json', '--no-lynis'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const checks = json<{checks: Array<{host: string; check: string; ok: boolean}>}>(r.stdout).checks
    expect(checks.filter((c) => c.check.startsWith('metrics: ')).length).toBe(9)
    expect(
      checks
        .filter((c) => c.check === 'logs reach the collector')
        .map((c) => c.host)
        .sort(),
    ).toEqual(['lb1', 'web1', 'web2'])
  })

  test('a second provision makes 0 changes', () => {
    const again = foobar(['provision', '-i', inv, '--yes', '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(json(again.stdout).summary).toMatchObject({changed: 0, changes: 0, failed: 0})
  })
})
