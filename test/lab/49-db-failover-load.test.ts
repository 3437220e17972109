/**
 * Writes survive the writer (issue 17, build item 7), in the primary/replica topology: a bounded write load through
 * the LB (the app's notes API, through the database endpoint) while the writer fails — its mysqld SIGKILLed (no
 * operator), then its whole host gone (`db promote --force`). Counted: acknowledged writes lost (must be 0), the
 * longest time without an acknowledged write, and whether two database hosts were ever writable at once (every
 * host's read_only polled every 200 ms; must never be). The old writer then rejoins as a replica with every write.
 */
import {randomBytes} from 'node:crypto'
import {appendFileSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, describe, expect, test} from 'vitest'
import {prepareMaterial} from '../../src/components/index.js'
import {loadInventory} from '../../src/inventory/index.js'
import {run} from '../../src/lab/exec.js'
import {shq} from '../../src/util/shell.js'
import {foobar, foobarAsync, json, sleep, variant} from './support/cli.js'
import {restoreLabTopology, waitStatusOk} from './support/db.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'
import {secondsBack, tally, writeLoad} from './support/notes.js'

const DB = ['web1', 'web2']
const mysql = (host: string, sql: string) => sshOk(host, `sudo mysql -N -B -e ${JSON.stringify(sql)}`)

/**
 * Every database host polls its own read_only every 200 ms (a loop on the host, so it goes on while the host is cut
 * off from this machine), stamped with the shared clock (the lab's guests share the kernel's). `finish` collects the
 * samples and counts the 200 ms windows in which more than one host was writable.
 */
async function writersWatch() {
  // A name of its own per watch: a unit the previous watch stopped can still be loaded (deactivating) when the next
  // one starts (CI on 7fdb2c2: "already loaded" on web2).
  const unit = `foobar-test-writers-watch-${randomBytes(4).toString('hex')}`
  const loop = `while :; do echo "$(date +%s%3N) $(mysql -N -B -e 'SELECT @@read_only' 2>/dev/null || echo x)"; sleep 0.2; done > /run/${unit}.log`
  for (const h of DB) {
    // A stopped transient unit stays loaded when it failed: reset, and --collect so it is unloaded when it ends.
    await ssh(h, `sudo systemctl stop ${unit} 2>/dev/null; sudo systemctl reset-failed ${unit} 2>/dev/null; sudo rm -f /run/${unit}.log`)
    await sshOk(h, `sudo systemd-run --quiet --collect --unit ${unit} sh -c ${shq(loop)}`)
  }
  return {
    async finish() {
      const windows = new Map<number, Set<string>>()
      let samples = 0
      for (const h of DB) {
        await ssh(h, `sudo systemctl stop ${unit}; sudo systemctl reset-failed ${unit} 2>/dev/null; true`)
        const lines = (await sshOk(h, `sudo cat /run/${unit}.log`)).split('\n').filter(Boolean)
        samples += lines.length
        for (const line of lines) {
          const [ms, ro] = line.split(' ')
          if (ro !== '0') continue
          const w = Math.floor(Number(ms) / 200)
          windows.set(w, (windows.get(w) ?? new Set()).add(h))
        }
      }
      const both = [...windows].filter(([, hosts]) => hosts.size > 1)
      return {
        samples,
        twoWriters: both.length,
        seen: both.map(([w, hosts]) => `${new Date(w * 200).toISOString()} ${[...hosts].join('+')}`),
      }
    },
  }
}

/** The acknowledged ids missing from `host`'s notes table. */
async function missingOn(host: string, ids: number[]): Promise<number[]> {
  const have = new Set((await mysql(host, 'SELECT id FROM foobar_app.notes')).split('\n').filter(Boolean).map(Number))
  return ids.filter((id) => !have.has(id))
}

/**
 * Awaits a step and says so when it took more than 5 s: the writer-SIGKILL test took a minute longer in half of the CI
 * runs, outside the figures it prints (db status was right at once), and this names the step.
 */
async function step<T>(name: string, work: Promise<T>): Promise<T> {
  const t0 = Date.now()
  try {
    return await work
  } finally {
    const s = (Date.now() - t0) / 1000
    if (s > 5) {
      console.log(`slow step: ${name} took ${s.toFixed(1)} s`)
      // Repeated in scripts/test.sh's closing lines, the part of a run CI keeps.
      const summary = process.env.FOOBAR_TEST_SUMMARY
      if (summary) appendFileSync(summary, `slow step: 49: ${name} took ${s.toFixed(1)} s\n`)
    }
  }
}

describe.skipIf(!labIsUp())('writes survive the writer (primary/replica, semi-sync, fencing, endpoint)', () => {
  const secret = join(mkdtempSync(join(tmpdir(), 'foobar-failover-')), 'app_db_password')
  writeFileSync(secret, `${randomBytes(18).toString('base64url')}\n`, {mode: 0o600})
  const app = `  endpoint: {}\n  app: {password: {file: ${secret}}}\n`
  const withApp = (t: string) => t.replace('  replication_user: repl\n', `  replication_user: repl\n${app}`)
  const inv = variant('failover', withApp)
  let domain: string
  let ca: string

  beforeAll(async () => {
    const lab = await loadInventory(LAB_INVENTORY)
    domain = lab.site.domain
    const r = foobar(['provision', '-i', inv, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    // After provision: on a first run (this file alone on a new checkout) the internal CA does not exist before it.
    ca = prepareMaterial(lab).backendCa
    await waitStatusOk(inv)
  })

  // Whatever a test left (a failed one included): web1 on the network, both databases up, web1 the writer again.
  afterEach(async () => {
    await run('ip', ['link', 'set', 'fbl-12', 'up']).catch(() => undefined)
    for (const h of DB) await step(`after the test: systemctl start mariadb on ${h}`, ssh(h, 'sudo systemctl start mariadb'))
    await step('after the test: the lab topology back', restoreLabTopology(withApp))
  })

  afterAll(async () => {
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    for (const h of DB) await ssh(h, 'sudo systemctl disable --now foobar-db-endpoint foobar-db-writer-check 2>/dev/null; true')
    await mysql('web1', "DROP DATABASE IF EXISTS foobar_app; DROP USER IF EXISTS 'foobar_app'@'10.77.0.12', 'foobar_app'@'10.77.0.13'")
  })

  test("the writer's mysqld SIGKILLed under 20 writes/s: no operator, 0 acknowledged writes lost, never two writers", async () => {
    const watch = await step("the writers' watch starting", writersWatch())
    const load = writeLoad(domain, ca, 20, 60_000)
    await sleep(8000)
    const killedAt = Date.now()
    await step('the kill', sshOk('web1', 'sudo pkill -KILL -x mariadbd'))
    await sleep(22_000)
    const result = await step('the load finishing', load.finish())
    const writers = await step("the writers' watch finishing", watch.finish())
    const back = secondsBack(result, killedAt)
    const lost = await step('the acknowledged ids read on web1', missingOn('web1', result.acked))
    console.log(
      `mysqld SIGKILL on the writer, 20 writes/s: ${result.sent} sent, ${result.acked.length} acknowledged, ${lost.length} acknowledged lost, writes back ${back === undefined ? 'never' : back.toFixed(1)} s after the kill (longest gap ${result.longestGapSeconds.toFixed(1)} s), two writers in ${writers.twoWriters} of the 200 ms windows (${writers.samples} samples on the hosts); failures: ${tally(result.errors)}`,
    )
    expect(lost).toEqual([])
    expect(writers.twoWriters, writers.seen.join(', ')).toBe(0)
    expect(back).toBeDefined()
    // The replica has every acknowledged write too.
    await step('db status right', waitStatusOk(inv))
    expect(await step('the acknowledged ids read on web2', missingOn('web2', result.acked))).toEqual([])
  })

  test('the writer host gone under 20 writes/s: db promote --force; 0 acknowledged lost, never two writers; it rejoins as a replica', async () => {
    const watch = await writersWatch()
    const load = writeLoad(domain, ca, 20, 90_000)
    await sleep(8000)
    // The host dies: its database is killed (no shutdown runs, as in a power cut), then it drops off the network (the
    // lab's link for web1 on the bridge). The stop after the kill only cancels systemd's restart of it. (Killed in the
    // middle of a shutdown instead, MariaDB can close its binlog cleanly with a transaction still prepared in InnoDB,
    // and then refuses to start: "Found 1 prepared transactions".)
    await sshOk('web1', "sudo sh -c 'pkill -KILL -x mariadbd; systemctl stop mariadb'")
    await run('ip', ['link', 'set', 'fbl-12', 'down'])
    try {
      await sleep(2000)
      const promotedAt = Date.now()
      const promote = await foobarAsync(['db', 'promote', 'web2', '-i', inv, '--yes', '--force', '--write', '--json'])
      expect(promote.code, promote.out).toBe(0)
      expect(json(promote.stdout)).toMatchObject({newPrimary: 'web2', oldPrimaryFenced: false})
      await sleep(15_000)
      const result = await load.finish()
      const back = secondsBack(result, promotedAt)
      const lost = await missingOn('web2', result.acked)
      // The host comes back (its link up, its database started as at boot): it asks web2 and stays read-only.
      await run('ip', ['link', 'set', 'fbl-12', 'up'])
      await sshOk('web1', 'sudo systemctl start mariadb')
      await sleep(5000)
      const writers = await watch.finish()
      console.log(
        `writer host gone, 20 writes/s: ${result.sent} sent, ${result.acked.length} acknowledged, ${lost.length} acknowledged lost, writes back ${back === undefined ? 'never' : back.toFixed(1)} s after db promote --force started (longest gap ${result.longestGapSeconds.toFixed(1)} s), two writers in ${writers.twoWriters} of the 200 ms windows (${writers.samples} samples on the hosts); failures: ${tally(result.errors)}`,
      )
      expect(lost).toEqual([])
      expect(writers.twoWriters, writers.seen.join(', ')).toBe(0)
      expect(back).toBeDefined()
      expect(back ?? Infinity).toBeLessThanOrEqual(30)
      expect((await mysql('web1', 'SELECT @@read_only')).trim()).toBe('1')
      // A transaction in its binary log that web2 never had, as the kill can leave one (the write it was committing
      // as it died, never acknowledged: CI on bde94f1 had one, most runs do not): made certain here. The plan says a
      // former writer rejoins; provision re-seeds it from web2 in the same run once replicating shows the divergence.
      await mysql('web1', "INSERT INTO foobar_app.notes (body, host) VALUES ('never acknowledged', 'test')")
      const p = foobar(['provision', '-i', inv, '--yes'])
      expect(p.code, p.stdout + p.stderr).toBe(0)
      expect(p.stdout + p.stderr).toMatch(/web1: re-seeding from web2: diverged from web2: /)
      expect((await mysql('web1', "SELECT COUNT(*) FROM foobar_app.notes WHERE body = 'never acknowledged'")).trim()).toBe('0')
      await waitStatusOk(inv)
      // Every acknowledged write reaches it: it applies up to web2's position (waited for, bounded), then has each id.
      const pos = (await mysql('web2', 'SELECT @@gtid_binlog_pos')).trim()
      const waited = (await mysql('web1', `SELECT MASTER_GTID_WAIT('${pos}', 60)`)).trim()
      const state = await ssh('web1', "sudo mysql -e 'SELECT @@gtid_slave_pos, @@gtid_binlog_pos, @@read_only\\G SHOW SLAVE STATUS\\G'")
      const missing = await missingOn('web1', result.acked)
      expect({waited, missing: missing.length}, `web2 at ${pos}; web1:\n${state.stdout}${state.stderr}`).toEqual({waited: '0', missing: 0})
    } finally {
      await run('ip', ['link', 'set', 'fbl-12', 'up']).catch(() => undefined)
      await ssh('web1', 'sudo systemctl start mariadb')
    }
  })
})
