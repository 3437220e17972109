/**
 * Monitoring (issue 9) on real hosts. The lab is restarted with a 4th host, extra1 (10.77.0.14), which a variant of
 * the lab inventory makes the monitoring server; afterwards the lab goes back to the three hosts of lab.yml (the
 * earlier and later lab files expect exactly those). Shows: every client scraped with Prometheus's targets all
 * up, exporter ports refused from anywhere but the monitoring server, `monitor qps` within 10 % of a generated
 * load at the LB and summed over the web servers, the same load in `monitor qps --since`'s chart from Prometheus
 * (and `--watch` redrawing it), a log line from a web server at the collector, and a second provision with 0 changes.
 *
 * Alerting (issue 19) on the same boot: a webhook receiver on the control machine (the bridge address), short rule
 * durations in the test inventory; stopping nginx on web2 brings "BackendDown web2" to the webhook within the
 * configured time (printed) and its resolution once nginx is back; two writable database hosts fire
 * MultipleWriters; `monitor test-alert` goes round trip; verify's alerting checks pass.
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {prepareMaterial} from '../../src/components/index.js'
import {httpsProbe} from '../../src/util/probes.js'
import {loadInventory} from '../../src/inventory/index.js'
import {BIN, envelope, foobar, foobarAsync, json, sleep, variant} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, labSpec, setLabHosts, ssh, sshOk} from './support/lab.js'
import {type PortState, probeMatrix} from './support/probe.js'
import {type Notification, firstMatching, webhookReceiver} from './support/webhook.js'

const LB = '10.77.0.11'
const WEB1 = '10.77.0.12'
const MON = '10.77.0.14'
/** The generated load: bounded in rate, count and time, to the lab's LB only. */
const RATE = 30
const LOAD_SECONDS = 15

/* Alerting timings of the test inventory (seconds), short for CI, and the worst case they add up to. */
const EVAL = 5
const BACKEND_FOR = 10
const WRITERS_FOR = 10
const GROUP_WAIT = 5
const GROUP_INTERVAL = 10
/** Prometheus's scrape interval (SCRAPE_INTERVAL) and HAProxy's health check (inter 2s, fall 3 / rise 2). */
const SCRAPE = 15
const HAPROXY_DOWN = 6
/** From the event to the webhook, at worst: HAProxy notices, a scrape, an evaluation, `for`, one more evaluation, the group wait. */
const BACKEND_BUDGET = HAPROXY_DOWN + SCRAPE + EVAL + BACKEND_FOR + EVAL + GROUP_WAIT
const WRITERS_BUDGET = SCRAPE + EVAL + WRITERS_FOR + EVAL + GROUP_WAIT
/** What a loaded 2-core lab adds to timers (a late evaluation, a slow scrape): the test allows this much over the budget. */
const SLACK = 20
const ALERTING = `alerting:
  evaluation_interval: ${EVAL}s
  rules:
    backend_down: {for: ${BACKEND_FOR}s}
    writers: {for: ${WRITERS_FOR}s}
  route: {group_wait: ${GROUP_WAIT}s, group_interval: ${GROUP_INTERVAL}s, repeat_interval: 1h}
  receivers:
    webhook: {url: "WEBHOOK"}
`

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
  let hook: Awaited<ReturnType<typeof webhookReceiver>> | undefined

  beforeAll(async () => {
    // A 4th lab host, booted beside the running three.
    await setLabHosts(await labSpec(), {hosts: 4})
    secrets = mkdtempSync(join(tmpdir(), 'foobar-mon-'))
    writeFileSync(join(secrets, 'monitor_password'), `${randomBytes(18).toString('base64url')}\n`, {mode: 0o600})
    // The webhook receiver: on the lab bridge's address, where the monitoring host's Alertmanager reaches it.
    hook = await webhookReceiver()
    inv = variant('monitoring', (t) =>
      t
        .replace('\nhosts:\n', `\n${ALERTING.replace('WEBHOOK', hook!.url)}\nhosts:\n`)
        .replace(/(  replication_password: .*\n)/, `$1  monitor_password: {file: ${join(secrets, 'monitor_password')}}\n`)
        .replace(/\s*$/, '\n  - name: extra1\n    address: 10.77.0.14\n    roles: [monitoring]\n'),
    )
    const r = foobar(['provision', '-i', inv, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  afterAll(async () => {
    await hook?.close()
    // Back to lab.yml's three hosts, with nothing of extra1 left for the files that follow.
    await setLabHosts(await labSpec(), {}, ['extra1'])
    if (secrets) rmSync(secrets, {recursive: true, force: true, maxRetries: 5})
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
    // The 9 clients, Prometheus itself, Alertmanager, the blackbox exporter and its 2 probes (site and health through lb1).
    expect(targets.data.activeTargets.length).toBe(14)
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
    const matrix: Array<[string, string, number, PortState]> = ports.flatMap(([, address, port]) => [
      ['extra1', address, port, 'open'],
      ['web2', address, port, 'filtered'],
      [address === LB ? 'web1' : 'lb1', address, port, 'filtered'],
    ])
    // Prometheus and Alertmanager: not open to the other hosts; the collector: open for log forwarding.
    matrix.push(['web1', MON, 9090, 'filtered'], ['web1', MON, 9093, 'filtered'], ['web1', MON, 6514, 'open'])
    expect(await probeMatrix(matrix)).toEqual([])
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

  test('monitor qps --since charts that load from Prometheus, at the LB and on each web server; --watch redraws it', async () => {
    interface Chart {
      stepSeconds: number
      end: number
      series: Array<{name: string; points: Array<[number, number]>}>
    }
    const max = (c: Chart | undefined, name: string) =>
      Math.max(0, ...(c?.series.find((s) => s.name === name)?.points ?? []).map(([, v]) => v))
    // The load above (30 req/s for 15 s): over Prometheus's 60 s rate about 7 req/s at the LB, which idles near 0, and
    // half that on each web server, which idle under 1 (HAProxy's health checks, the exporter). Scraped every 15 s.
    const got = await waitFor(
      'the load in the chart data',
      async () => {
        const r = await foobarAsync(['monitor', 'qps', '-i', inv, '--since', '5m', '--json'])
        return {code: r.code, err: r.stderr, body: r.stdout ? json<Chart>(r.stdout) : undefined}
      },
      (c) => c.code === 0 && max(c.body, 'lb1') >= 3 && max(c.body, 'web1') >= 1.5 && max(c.body, 'web2') >= 1.5,
      60_000,
    )
    expect(got.body!.series.map((s) => s.name)).toEqual(['lb1', 'web1', 'web2'])
    expect(got.body!.stepSeconds).toBe(15)
    // For people: the chart, with each series in the legend (captured in the README).
    const human = await foobarAsync(['monitor', 'qps', '-i', inv, '--since', '5m'])
    expect(human.code, human.stderr).toBe(0)
    console.log(human.stdout)
    for (const name of ['lb1', 'web1', 'web2']) expect(human.stdout).toMatch(new RegExp(`^  . ${name} +now +[\\d.]+ +max +[\\d.]+$`, 'm'))
    expect(human.stdout).toMatch(/^ *0┤/m)
    expect(human.stdout.split('\n').every((l) => l.length <= 80)).toBe(true)

    // --watch: a draw every --interval until interrupted; under --json one envelope per line.
    const child = spawn(process.execPath, [BIN, 'monitor', 'qps', '-i', inv, '--since', '5m', '--watch', '--interval', '2s', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((r) => child.on('exit', (code, signal) => r(code ?? (signal ? 128 : null))))
    const t0 = Date.now()
    while (out.split('\n').filter(Boolean).length < 2 && Date.now() - t0 < 60_000) await sleep(200)
    child.kill('SIGINT')
    await exited
    const draws = out
      .split('\n')
      .filter(Boolean)
      .slice(0, 2)
      .map((l) => envelope<Chart>(l))
    expect(draws.length).toBe(2)
    for (const d of draws) expect(d.result!.series.map((s) => s.name)).toEqual(['lb1', 'web1', 'web2'])
    expect(draws[1]!.result!.end).toBeGreaterThanOrEqual(draws[0]!.result!.end)
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
    // Alerting, on the monitoring host: the rules loaded, Prometheus sending to Alertmanager, the probes succeeding.
    const alerting = checks.filter(
      (c) => c.host === 'extra1' && /^(alert rules loaded|alertmanager reachable from prometheus|blackbox probes succeed)$/.test(c.check),
    )
    expect(alerting.map((c) => `${c.check} ${c.ok}`).sort()).toEqual([
      'alert rules loaded true',
      'alertmanager reachable from prometheus true',
      'blackbox probes succeed true',
    ])
  })

  /** Waits for a webhook notification after `since` with an alert that matches; the seconds it took. */
  async function notified(what: string, since: number, match: (a: Notification['alerts'][number]) => boolean, timeoutMs: number) {
    const found = await waitFor(
      what,
      async () => firstMatching(hook!.received, since, match),
      (f) => f !== undefined,
      timeoutMs,
    )
    return (found!.at - since) / 1000
  }

  test(`backend down: nginx stopped on web2 reaches the webhook within ${BACKEND_BUDGET} s (+${SLACK} s slack), resolved once it is back`, async () => {
    const stopped = Date.now()
    await sshOk('web2', 'sudo systemctl stop nginx')
    try {
      const firing = await notified(
        'BackendDown web2 at the webhook',
        stopped,
        (a) => a.status === 'firing' && a.labels.alertname === 'BackendDown' && a.labels.host === 'web2',
        (BACKEND_BUDGET + SLACK + 30) * 1000,
      )
      console.log(`BackendDown web2 reached the webhook ${firing.toFixed(1)} s after nginx stopped (budget ${BACKEND_BUDGET} s)`)
      expect(firing).toBeLessThanOrEqual(BACKEND_BUDGET + SLACK)
      // monitor alerts shows it: which, where, since when.
      const alerts = await foobarAsync(['monitor', 'alerts', '-i', inv, '--json'])
      expect(alerts.code, alerts.stdout + alerts.stderr).toBe(0)
      const list = json<{alerts: Array<{name: string; host: string; since: string; state: string; labels: Record<string, string>}>}>(
        alerts.stdout,
      ).alerts
      const backend = list.find((a) => a.name === 'BackendDown' && a.host === 'web2')
      expect(backend, JSON.stringify(list)).toMatchObject({state: 'active', labels: {lb: 'lb1'}})
      expect(Date.parse(backend!.since)).toBeGreaterThan(stopped - 5000)
    } finally {
      await sshOk('web2', 'sudo systemctl start nginx')
    }
    const started = Date.now()
    const resolved = await notified(
      'BackendDown web2 resolved at the webhook',
      started,
      (a) => a.status === 'resolved' && a.labels.alertname === 'BackendDown' && a.labels.host === 'web2',
      120_000,
    )
    console.log(`BackendDown web2 resolved at the webhook ${resolved.toFixed(1)} s after nginx started again`)
  })

  test(`two writable database hosts fire MultipleWriters (within ${WRITERS_BUDGET} s + ${SLACK} s slack)`, async () => {
    const since = Date.now()
    await sshOk('web2', `sudo mysql -e 'SET GLOBAL read_only = 0'`)
    try {
      const seconds = await notified(
        'MultipleWriters at the webhook',
        since,
        (a) => a.status === 'firing' && a.labels.alertname === 'MultipleWriters' && a.labels.host === 'web2',
        (WRITERS_BUDGET + SLACK + 30) * 1000,
      )
      console.log(`MultipleWriters reached the webhook ${seconds.toFixed(1)} s after web2 became writable (budget ${WRITERS_BUDGET} s)`)
      expect(seconds).toBeLessThanOrEqual(WRITERS_BUDGET + SLACK)
      // One alert per writable host: the primary too.
      expect(
        firstMatching(hook!.received, since, (a) => a.labels.alertname === 'MultipleWriters' && a.labels.host === 'web1'),
      ).toBeDefined()
    } finally {
      await sshOk('web2', `sudo mysql -e 'SET GLOBAL read_only = 1'`)
    }
  })

  test('monitor test-alert: the webhook receives the test alert, and the command knows it', async () => {
    const since = Date.now()
    const r = await foobarAsync(['monitor', 'test-alert', '-i', inv, '--json', '--timeout', '60'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const result = json<{testId: string; seconds: number; receivers: Array<{integration: string; delivered: boolean}>}>(r.stdout)
    expect(result.receivers).toEqual([{integration: 'webhook', delivered: true, failedAttempts: 0}])
    const got = firstMatching(hook!.received, since, (a) => a.labels.alertname === 'FoobarTestAlert' && a.labels.test_id === result.testId)
    expect(got, 'the test alert with its test_id at the webhook').toBeDefined()
    console.log(
      `monitor test-alert: delivered in ${result.seconds} s (webhook got it ${((got!.at - since) / 1000).toFixed(1)} s after the command started)`,
    )
  })

  test('a second provision makes 0 changes', () => {
    const again = foobar(['provision', '-i', inv, '--yes', '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(json(again.stdout).summary).toMatchObject({changed: 0, changes: 0, failed: 0})
  })
})
