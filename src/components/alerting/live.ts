import {randomBytes} from 'node:crypto'
import {hostname, userInfo} from 'node:os'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner, Transport} from '../../remote/runner.js'
import {UserError} from '../../util/errors.js'
import {shq} from '../../util/shell.js'
import {sleep} from '../../util/wait.js'
import {type FiringAlert, notificationCounts, parseAmAlerts} from './api.js'
import {TEST_ALERT, alertingOn, alertmanagerUrl} from './paths.js'

/*
 * What `foobar monitor alerts` and `monitor test-alert` do: ask Alertmanager on the monitoring host, over SSH (its
 * port is open to the admin networks only; foobar reaches it the way it reaches Prometheus).
 */

function monitoringHostFor(inv: Inventory): Host {
  const mon = inv.hosts.find((h) => h.roles.includes('monitoring'))
  if (!mon) throw new UserError('no monitoring host in the inventory: alerts need a host with the monitoring role')
  if (!alertingOn(inv)) throw new UserError('alerting is switched off in the inventory (alerting.enabled: false)')
  return mon
}

async function withMonitoring<T>(inv: Inventory, transport: Transport, work: (conn: Runner, mon: Host) => Promise<T>): Promise<T> {
  const mon = monitoringHostFor(inv)
  const conn = await transport.open(mon)
  try {
    return await work(conn, mon)
  } finally {
    conn.close()
  }
}

/** The alerts Alertmanager holds now (firing; suppressed ones say so), oldest first. */
export async function firingAlerts(inv: Inventory, transport: Transport): Promise<{monitoring: string; alerts: FiringAlert[]}> {
  return withMonitoring(inv, transport, async (conn, mon) => {
    const r = await conn.run(`curl -fsS -m 10 ${shq(`${alertmanagerUrl(mon)}/api/v2/alerts?active=true&silenced=true&inhibited=true`)}`)
    return {monitoring: mon.name, alerts: parseAmAlerts(r.stdout)}
  })
}

export interface ReceiverDelivery {
  /** Alertmanager's integration: webhook or email. */
  integration: string
  delivered: boolean
  /** Failed attempts seen meanwhile (Alertmanager retries them). */
  failedAttempts: number
}

export interface TestAlertResult {
  testId: string
  monitoring: string
  /** Seconds from sending the alert until every receiver had it (or until giving up). */
  seconds: number
  receivers: ReceiverDelivery[]
}

/** The integrations the inventory's receivers configure, as Alertmanager names them in its metrics. */
export function integrations(inv: Inventory): string[] {
  const r = inv.alerting.receivers
  return [...(r.webhook ? ['webhook'] : []), ...(r.email ? ['email'] : [])]
}

/**
 * Sends a test alert into Alertmanager and waits until each configured receiver has it. How foobar knows: the test
 * alert has a route of its own (no group wait, its own group), and Alertmanager counts every notification attempt
 * per integration (`alertmanager_notifications_total`, and `..._failed_total` for the failed ones, in its /metrics):
 * a receiver had it once an attempt of its integration succeeded after the alert was accepted. A notification of
 * another alert to the same integration at that very moment would be counted too; the alert's `test_id` (in the
 * result) is what a receiver shows to tell them apart. The alert is resolved afterwards.
 */
export async function testAlert(inv: Inventory, transport: Transport, options: {timeoutMs: number}): Promise<TestAlertResult> {
  const wanted = integrations(inv)
  if (wanted.length === 0)
    throw new UserError('no receivers in the inventory: set alerting.receivers.webhook and/or alerting.receivers.email, then provision')
  return withMonitoring(inv, transport, async (conn, mon) => {
    const am = alertmanagerUrl(mon)
    const metrics = async () => notificationCounts((await conn.run(`curl -fsS -m 10 ${shq(`${am}/metrics`)}`)).stdout)
    const testId = randomBytes(6).toString('hex')
    const alert = (endsAt: Date) => [
      {
        labels: {alertname: TEST_ALERT, host: mon.name, severity: 'none', test_id: testId},
        annotations: {summary: `test alert from foobar monitor test-alert (${safeWho()})`},
        startsAt: new Date().toISOString(),
        endsAt: endsAt.toISOString(),
      },
    ]
    const post = (body: unknown) =>
      conn.run(`curl -fsS -m 10 -H 'Content-Type: application/json' --data-binary @- ${shq(`${am}/api/v2/alerts`)}`, {
        stdin: JSON.stringify(body),
      })
    const before = await metrics()
    const t0 = Date.now()
    await post(alert(new Date(t0 + 10 * 60_000)))
    const receivers: ReceiverDelivery[] = wanted.map((integration) => ({integration, delivered: false, failedAttempts: 0}))
    try {
      while (Date.now() - t0 < options.timeoutMs) {
        const now = await metrics()
        for (const r of receivers) {
          const a = before[r.integration] ?? {sent: 0, failed: 0}
          const b = now[r.integration] ?? {sent: 0, failed: 0}
          r.failedAttempts = b.failed - a.failed
          r.delivered = b.sent - a.sent - r.failedAttempts > 0
        }
        if (receivers.every((r) => r.delivered)) break
        await sleep(250)
      }
    } finally {
      // Resolved at once (a receiver with send_resolved gets that too, at its group's next interval).
      await post(alert(new Date())).catch(() => undefined)
    }
    return {testId, monitoring: mon.name, seconds: Math.round((Date.now() - t0) / 100) / 10, receivers}
  })
}

/** user@machine for the test alert's summary, reduced to characters that need no care anywhere. */
function safeWho(): string {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry
  }
  return `${user}@${hostname()}`.replace(/[^A-Za-z0-9@._-]/g, '_').slice(0, 100)
}
