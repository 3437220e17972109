/**
 * Writes survive the writer in the Galera topology (issue 17, items 6 and 7): the lab's primary/replica databases
 * become a cluster in place (inventories/lab-galera.yml: web1 and web2 members, lb1 the arbitrator); then, under a
 * bounded write load through the LB (the app's notes API, through each web server's database endpoint), the member
 * taking writes fails — its mysqld SIGKILLed, then its whole host gone — with no operator action. Counted:
 * acknowledged writes lost (must be 0), the longest time without an acknowledged write (target ≤ 10 s), and whether
 * two primary components ever took writes at once (every member's state polled every 200 ms on the host itself;
 * must never be). The failed member then rejoins with every acknowledged write.
 *
 * Runs after every other lab file but 99-down: it leaves the lab's databases a Galera cluster.
 */
import {randomBytes} from 'node:crypto'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {run} from '../../src/lab/exec.js'
import {shq} from '../../src/util/shell.js'
import {foobar, foobarAsync, json, provisionedLab, sleep} from './support/cli.js'
import {labIsUp, ssh, sshOk} from './support/lab.js'
import {secondsBack, tally, writeLoad} from './support/notes.js'

const GALERA = 'inventories/lab-galera.yml'
const MEMBERS = ['web1', 'web2']
const ADDRESS: Record<string, string> = {web1: '10.77.0.12', web2: '10.77.0.13'}
const mysql = (host: string, sql: string) => sshOk(host, `sudo mysql -N -B -e ${JSON.stringify(sql)}`)

function dbStatus() {
  const r = foobar(['db', 'status', '-i', GALERA, '--json'])
  return {code: r.code, out: r.stdout + r.stderr, body: r.stdout ? json(r.stdout) : undefined}
}

async function waitClusterOk(timeoutMs = 120_000) {
  const t0 = Date.now()
  let s = dbStatus()
  while (s.code !== 0 && Date.now() - t0 < timeoutMs) {
    await sleep(2000)
    s = dbStatus()
  }
  expect(s.code, s.out).toBe(0)
  return (Date.now() - t0) / 1000
}

/**
 * Every member samples its own state every 200 ms (a loop on the host, so it goes on while the host is cut off):
 * cluster status and the members in its view. Two primary components = a 200 ms window in which two members were
 * both in a primary component and neither's view had the other (each went on without the other: a split brain).
 */
async function splitWatch() {
  const unit = `foobar-test-split-watch-${randomBytes(4).toString('hex')}`
  const q =
    "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_STATUS','WSREP_INCOMING_ADDRESSES')"
  const loop = `while :; do echo "$(date +%s%3N) $(mysql -N -B -e ${shq(q)} 2>/dev/null || echo x)"; sleep 0.2; done > /run/${unit}.log`
  for (const h of MEMBERS) await sshOk(h, `sudo systemd-run --quiet --collect --unit ${unit} sh -c ${shq(loop)}`)
  return {
    async finish() {
      const windows = new Map<number, Map<string, string>>()
      let samples = 0
      for (const h of MEMBERS) {
        await ssh(h, `sudo systemctl stop ${unit}; sudo systemctl reset-failed ${unit} 2>/dev/null; true`)
        const lines = (await sshOk(h, `sudo cat /run/${unit}.log`)).split('\n').filter(Boolean)
        samples += lines.length
        for (const line of lines) {
          // "<ms> <incoming addresses> <cluster status>" (ordered by variable name).
          const [ms, view, status] = line.split(' ')
          if (status !== 'Primary') continue
          const w = Math.floor(Number(ms) / 200)
          windows.set(w, (windows.get(w) ?? new Map()).set(h, view ?? ''))
        }
      }
      const split = [...windows].filter(([, m]) => {
        const hosts = [...m.keys()]
        return hosts.length > 1 && hosts.every((h) => hosts.filter((o) => o !== h).every((o) => !m.get(h)!.includes(ADDRESS[o]!)))
      })
      return {samples, split: split.length, seen: split.map(([w, m]) => `${new Date(w * 200).toISOString()} ${[...m.keys()].join('+')}`)}
    },
  }
}

async function missingOn(host: string, ids: number[]): Promise<number[]> {
  const have = new Set((await mysql(host, 'SELECT id FROM foobar_app.notes')).split('\n').filter(Boolean).map(Number))
  return ids.filter((id) => !have.has(id))
}

/** Waits until `host` is synced in the cluster again; seconds taken. */
async function waitSynced(host: string, timeoutMs = 180_000): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    const r = await ssh(host, `sudo mysql -N -B -e "SHOW STATUS LIKE 'wsrep_local_state_comment'"`)
    if (/Synced/.test(r.stdout)) return (Date.now() - t0) / 1000
    if (Date.now() - t0 > timeoutMs) throw new Error(`${host} not synced after ${timeoutMs / 1000} s: ${r.stdout}${r.stderr}`)
    await sleep(500)
  }
}

describe.skipIf(!labIsUp())('writes survive a member (galera: two members and an arbitrator, no operator)', () => {
  let domain: string
  let ca: string

  beforeAll(async () => {
    ;({domain, ca} = await provisionedLab())
    const t0 = Date.now()
    const r = foobar(['provision', '-i', GALERA, '--yes'])
    console.log(`primary/replica -> galera in place: provision ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    await waitClusterOk()
  })

  afterAll(async () => {
    await run('ip', ['link', 'set', 'fbl-12', 'up']).catch(() => undefined)
  })

  test('the cluster: both members synced with the arbitrator, over TLS; db promote refuses; a second provision changes nothing', async () => {
    const s = dbStatus()
    expect(s.code, s.out).toBe(0)
    expect(s.body.topology).toBe('galera')
    expect(s.body.writable.sort()).toEqual(['web1', 'web2'])
    for (const h of s.body.hosts) expect(h).toMatchObject({state: 'Synced', clusterStatus: 'Primary', clusterSize: 3})
    // The arbitrator is in the cluster over TLS: garbd runs on lb1 with the internal CA's certificate.
    expect((await sshOk('lb1', 'systemctl is-active garb')).trim()).toBe('active')
    expect(await mysql('web1', 'SELECT @@wsrep_provider_options')).toMatch(/socket\.ssl = YES/)
    // A write on one member is on the other at once (synchronous replication).
    await mysql(
      'web1',
      "CREATE DATABASE IF NOT EXISTS foobar_health; CREATE TABLE IF NOT EXISTS foobar_health.galera (id INT PRIMARY KEY, v VARCHAR(16)); REPLACE INTO foobar_health.galera VALUES (1, 'from-web1')",
    )
    expect((await mysql('web2', 'SET SESSION wsrep_sync_wait = 1; SELECT v FROM foobar_health.galera WHERE id = 1')).trim()).toBe(
      'from-web1',
    )
    const promote = foobar(['db', 'promote', 'web2', '-i', GALERA, '--yes'])
    expect(promote.code).toBe(2)
    expect(promote.stderr).toMatch(/nothing to promote/)
    const plan = foobar(['plan', '-i', GALERA, '--detailed-exitcode'])
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
    const v = foobar(['verify', '-i', GALERA, '--limit', 'web1,web2', '--no-lynis'])
    expect(v.code, v.stdout + v.stderr).toBe(0)
    expect(v.stdout).toMatch(/galera: synced in the primary component +pass +synced, cluster of 3/)
    expect(v.stdout).toMatch(/db endpoint leads to the writer +pass +127\.0\.0\.1:3306 -> web1/)
  })

  test('a config change restarts one member at a time, under 20 writes/s, each drained from the endpoints first: no write fails', async () => {
    // A config that changed after the member started (here: its file's time) is loaded by a rolling restart.
    for (const h of MEMBERS) await sshOk(h, 'sudo touch /etc/mysql/mariadb.conf.d/60-foobar.cnf')
    const plan = foobar(['plan', '-i', GALERA])
    expect(plan.stdout).toMatch(/restart to load the change, one member at a time/)
    const load = writeLoad(domain, ca, 20, 120_000)
    await sleep(3000)
    const t0 = Date.now()
    // Not foobar(): a synchronous child would stop the load generator in this process while it runs.
    const r = await foobarAsync(['provision', '-i', GALERA, '--yes'])
    const took = (Date.now() - t0) / 1000
    await sleep(3000)
    const result = await load.finish()
    const lost = await missingOn('web2', result.acked)
    console.log(
      `galera rolling restart of both members under 20 writes/s: provision ${took.toFixed(0)} s, ${result.sent} sent, ${result.acked.length} acknowledged, ${result.sent - result.acked.length} failed, ${lost.length} acknowledged lost, longest gap ${result.longestGapSeconds.toFixed(1)} s; failures: ${tally(result.errors)}`,
    )
    // When a write failed: when it was sent, and what the provision was doing then (its steps, in order).
    if (result.failTimes.length > 0)
      console.log(
        `failed writes sent at ${result.failTimes.map((t) => new Date(t).toISOString()).join(', ')}; provision from ${new Date(t0).toISOString()}:\n${r.out}`,
      )
    expect(r.code, r.out).toBe(0)
    expect(r.out).toMatch(/restarting to load the changed config/)
    expect(lost).toEqual([])
    // A member restarts only while the other serves, and only once the endpoints stopped sending it new connections:
    // no write fails.
    expect(r.out).toMatch(/the database endpoints on 2 web servers send new connections elsewhere/)
    expect(result.sent - result.acked.length, tally(result.errors)).toBe(0)
    await waitClusterOk()
    const again = foobar(['plan', '-i', GALERA, '--detailed-exitcode'])
    expect(again.code, again.stdout).toBe(0)
  })

  test("the writing member's mysqld SIGKILLed under 20 writes/s: 0 acknowledged lost, writes back within 10 s, never two primary components; it rejoins by itself", async () => {
    const watch = await splitWatch()
    const load = writeLoad(domain, ca, 20, 60_000)
    await sleep(8000)
    const killedAt = Date.now()
    await sshOk('web1', 'sudo pkill -KILL -x mariadbd')
    await sleep(22_000)
    const result = await load.finish()
    const back = secondsBack(result, killedAt)
    // systemd starts it again (Restart=on-abort); it rejoins by incremental state transfer.
    const rejoin = await waitSynced('web1')
    const split = await watch.finish()
    const lost = await missingOn('web2', result.acked)
    const lostOnRejoined = await missingOn('web1', result.acked)
    console.log(
      `galera, mysqld SIGKILL on the writing member, 20 writes/s: ${result.sent} sent, ${result.acked.length} acknowledged, ${lost.length} acknowledged lost (${lostOnRejoined.length} missing on web1 after it rejoined), writes back ${back === undefined ? 'never' : back.toFixed(1)} s after the kill (longest gap ${result.longestGapSeconds.toFixed(1)} s), two primary components in ${split.split} of the 200 ms windows (${split.samples} samples); web1 synced again ${rejoin.toFixed(1)} s after the load ended; failures: ${tally(result.errors)}`,
    )
    expect(lost).toEqual([])
    expect(lostOnRejoined).toEqual([])
    expect(split.split, split.seen.join(', ')).toBe(0)
    expect(back).toBeDefined()
    expect(back ?? Infinity).toBeLessThanOrEqual(10)
    // How long `db status` takes to say the cluster is whole again (a rehearsal spent ~60 s more here than a quiet run).
    console.log(`galera, after the SIGKILL: db status exits 0 after ${(await waitClusterOk()).toFixed(0)} s of asking`)
  })

  test('the writing member host gone under 20 writes/s: 0 acknowledged lost, writes back within 10 s, never two primary components; it rejoins', async () => {
    const watch = await splitWatch()
    const load = writeLoad(domain, ca, 20, 60_000)
    await sleep(8000)
    const goneAt = Date.now()
    // The host drops off the network (the lab's link for web1 on the bridge): its database still runs, cut off.
    await run('ip', ['link', 'set', 'fbl-12', 'down'])
    try {
      await sleep(22_000)
      const result = await load.finish()
      const back = secondsBack(result, goneAt)
      const lost = await missingOn('web2', result.acked)
      // The cut-off member refuses writes (no quorum) while web2 and the arbitrator go on.
      const cutOff = (await mysql('web2', "SHOW STATUS LIKE 'wsrep_cluster_size'")).trim()
      await run('ip', ['link', 'set', 'fbl-12', 'up'])
      const rejoin = await waitSynced('web1')
      const split = await watch.finish()
      const lostOnRejoined = await missingOn('web1', result.acked)
      console.log(
        `galera, writing member's host gone, 20 writes/s: ${result.sent} sent, ${result.acked.length} acknowledged, ${lost.length} acknowledged lost (${lostOnRejoined.length} missing on web1 after it rejoined), writes back ${back === undefined ? 'never' : back.toFixed(1)} s after it went (longest gap ${result.longestGapSeconds.toFixed(1)} s), web2 saw ${cutOff.replace(/\s+/g, ' ')} while it was gone, two primary components in ${split.split} of the 200 ms windows (${split.samples} samples); web1 synced ${rejoin.toFixed(1)} s after its link came back; failures: ${tally(result.errors)}`,
      )
      expect(lost).toEqual([])
      expect(lostOnRejoined).toEqual([])
      expect(split.split, split.seen.join(', ')).toBe(0)
      expect(back).toBeDefined()
      expect(back ?? Infinity).toBeLessThanOrEqual(10)
      console.log(`galera, after the host came back: db status exits 0 after ${(await waitClusterOk()).toFixed(0)} s of asking`)
    } finally {
      await run('ip', ['link', 'set', 'fbl-12', 'up']).catch(() => undefined)
    }
  })

  test('the whole cluster stopped: provision starts it again on the most advanced member (not the primary), once', async () => {
    // web1 stops first; web2 (with the arbitrator, still a quorum) takes one more write, then stops too.
    await sshOk('web1', 'sudo systemctl stop mariadb')
    await mysql('web2', "REPLACE INTO foobar_health.galera VALUES (2, 'only-on-web2')")
    await sshOk('web2', 'sudo systemctl stop mariadb')
    const seqno = async (h: string) => Number((await sshOk(h, "sudo sed -n 's/^seqno: *//p' /var/lib/mysql/grastate.dat")).trim())
    const [s1, s2] = [await seqno('web1'), await seqno('web2')]
    expect(s2).toBeGreaterThan(s1)
    const r = foobar(['provision', '-i', GALERA, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout + r.stderr).toMatch(/web2.*starting a new cluster here: the most advanced member \(seqno/)
    expect((r.stdout + r.stderr).match(/starting a new cluster here/g)).toHaveLength(1)
    await waitClusterOk()
    // web1 joined the cluster web2 started: the last write is on both.
    for (const h of MEMBERS) expect((await mysql(h, 'SELECT v FROM foobar_health.galera WHERE id = 2')).trim()).toBe('only-on-web2')
    console.log(`galera cluster stopped (web1 seqno ${s1}, web2 ${s2}): started again on web2, web1 joined`)
    // And everything that runs with the database is back (the exporter, the writer check, the arbitrator).
    const v = foobar(['verify', '-i', GALERA, '--no-lynis'])
    expect(v.code, v.stdout + v.stderr).toBe(0)
  })
})
