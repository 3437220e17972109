/**
 * Fencing (issue 17): a database host that is not the designated writer never takes writes — after a restart, after
 * a promotion made while its database was dead, and after one made while its host was gone — and the designated
 * writer takes writes again on its own after a restart or a reboot. Semi-synchronous replication is on, and
 * `db status` exits non-zero, saying what to do, while the topology is wrong.
 */
import {afterEach, beforeAll, describe, expect, test} from 'vitest'
import {foobar, json, sleep, variant} from './support/cli.js'
import {dbStatus as status, restoreLabTopology, waitStatusOk} from './support/db.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'

const mysql = (host: string, sql: string) => sshOk(host, `sudo mysql -N -B -e ${JSON.stringify(sql)}`)
const readOnly = async (host: string) => (await ssh(host, 'sudo mysql -N -B -e "SELECT @@read_only"', {timeoutMs: 10_000})).stdout.trim()
/** Seconds until `host`'s database is writable (read_only 0), polled every 200 ms; -1 if not within the limit. */
async function secondsUntilWritable(host: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if ((await readOnly(host)) === '0') return (Date.now() - t0) / 1000
    await sleep(200)
  }
  return -1
}

describe.skipIf(!labIsUp())('fencing: only the designated writer takes writes', () => {
  beforeAll(() => {
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  // Whatever a test left (a failed one included): the lab's topology again, for the next test and the next file.
  afterEach(async () => {
    for (const h of ['web1', 'web2']) await ssh(h, 'sudo systemctl start mariadb')
    await restoreLabTopology()
  })

  test('every database host starts read-only; the designated writer lifted it; semi-sync is on; db status says so', async () => {
    for (const h of ['web1', 'web2'])
      expect(await sshOk(h, 'grep -E "^read_only" /etc/mysql/mariadb.conf.d/60-foobar.cnf')).toBe('read_only = ON\n')
    expect(await readOnly('web1')).toBe('0')
    expect(await readOnly('web2')).toBe('1')
    const semi = (h: string, v: string) =>
      mysql(h, `SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '${v}'`)
    expect((await semi('web1', 'RPL_SEMI_SYNC_MASTER_STATUS')).trim()).toBe('ON')
    expect((await semi('web1', 'RPL_SEMI_SYNC_MASTER_CLIENTS')).trim()).toBe('1')
    expect((await semi('web2', 'RPL_SEMI_SYNC_SLAVE_STATUS')).trim()).toBe('ON')
    const s = status(LAB_INVENTORY)
    expect(s.code, s.out).toBe(0)
    expect(s.body).toMatchObject({writer: {name: 'web1'}, writable: ['web1'], problems: []})
    expect(s.body.hosts.find((h: {host: string}) => h.host === 'web1').semiSync).toMatchObject({master: 'ON', clients: 1})
    // A second provision changes nothing (the fence's accounts, the record, read-only are all in place).
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })

  test('a restarted replica stays read-only; the writer restarted, and rebooted, takes writes again on its own', async () => {
    await sshOk('web2', 'sudo systemctl restart mariadb')
    await sleep(3000)
    expect(await readOnly('web2')).toBe('1')
    await sshOk('web1', 'sudo systemctl restart mariadb')
    const restart = await secondsUntilWritable('web1', 60_000)
    const bootId = await sshOk('web1', 'cat /proc/sys/kernel/random/boot_id')
    await ssh('web1', 'sudo systemctl reboot')
    const t0 = Date.now()
    while (Date.now() - t0 < 120_000) {
      const now = (await ssh('web1', 'cat /proc/sys/kernel/random/boot_id', {timeoutMs: 10_000})).stdout
      if (now !== '' && now !== bootId) break
      await sleep(500)
    }
    const reboot = await secondsUntilWritable('web1', 120_000)
    const rebootTotal = reboot < 0 ? -1 : (Date.now() - t0) / 1000
    console.log(
      `designated writer writable again, no operator: ${restart.toFixed(1)} s after a restart, ${rebootTotal.toFixed(1)} s after a reboot`,
    )
    expect(restart).toBeGreaterThanOrEqual(0)
    expect(reboot).toBeGreaterThanOrEqual(0)
    expect(await sshOk('web1', 'sudo journalctl -q -b -u foobar-db-fence --no-pager -o cat')).toMatch(
      /confirmed by 10\.77\.0\.13: taking writes/,
    )
    await waitStatusOk(LAB_INVENTORY, 90_000)
  })

  test("db promote with the primary's database dead: refused without --force; with it, the old primary stays fenced", async () => {
    const inv = variant('fence-dead', (t) => `${t}\n# a copy that db promote --write may rewrite\n`)
    await sshOk('web1', 'sudo systemctl stop mariadb')
    const refused = foobar(['db', 'promote', 'web2', '-i', inv, '--yes'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/web1's database does not answer \(its host does: mysqld is down or hung\).*--force/)
    expect(await readOnly('web2')).toBe('1')
    const t0 = Date.now()
    const forced = foobar(['db', 'promote', 'web2', '-i', inv, '--yes', '--force', '--write', '--json'])
    expect(forced.code, forced.stdout + forced.stderr).toBe(0)
    expect(json(forced.stdout)).toMatchObject({newPrimary: 'web2', oldPrimaryFenced: true, oldPrimaryStopped: true, repointed: []})
    expect(await readOnly('web2')).toBe('0')
    console.log(
      `db promote --force with the primary's database dead: web2 writable ${((Date.now() - t0) / 1000).toFixed(1)} s after the command started`,
    )
    // The old primary's database started again (a reboot, an operator): read-only, and it says why.
    await sshOk('web1', 'sudo systemctl start mariadb')
    await sleep(5000)
    expect(await readOnly('web1')).toBe('1')
    expect(await sshOk('web1', 'sudo journalctl -q -u foobar-db-fence --no-pager -o cat | tail -n 1')).toMatch(
      /fenced by foobar \(generation \d+: web2 is the writer/,
    )
    const wrong = status(inv)
    expect(wrong.code, wrong.out).not.toBe(0)
    // And semi-sync has no replica to acknowledge, which is said too: no replica connected to the new writer, or, once
    // something wrote to it and waited the timeout, fallen back to asynchronous (the promotion's own writes wait for none).
    expect(wrong.body.problems.map((p: {problem: string}) => p.problem)).toEqual([
      expect.stringMatching(/^not replicating \(fenced: generation/),
      expect.stringMatching(
        /^(no replica is connected to the writer web2 for semi-synchronous replication|semi-synchronous replication fell back to asynchronous on web2)/,
      ),
    ])
    // The inventory was updated: provision repoints the old primary; then the topology is right.
    const p = foobar(['provision', '-i', inv, '--yes'])
    expect(p.code, p.stdout + p.stderr).toBe(0)
    await waitStatusOk(inv)
    // And back to the lab's own topology.
    expect(foobar(['db', 'promote', 'web1', '-i', inv, '--yes', '--write']).code).toBe(0)
    expect(foobar(['provision', '-i', LAB_INVENTORY, '--yes']).code).toBe(0)
    await waitStatusOk(LAB_INVENTORY)
  })

  test('an old primary whose host was gone during the promotion asks the others when it comes back, and stays read-only', async () => {
    // The control machine cannot reach web1 (its SSH port in this copy of the inventory is closed).
    const gone = variant('fence-gone', (t) => t.replace('    address: 10.77.0.12\n', '    address: 10.77.0.12\n    ssh: {port: 2}\n'))
    await sshOk('web1', 'sudo systemctl stop mariadb')
    const forced = foobar(['db', 'promote', 'web2', '-i', gone, '--yes', '--force', '--json'])
    expect(forced.code, forced.stdout + forced.stderr).toBe(0)
    expect(json(forced.stdout)).toMatchObject({newPrimary: 'web2', oldPrimaryFenced: false})
    const generation = json(forced.stdout).generation as number
    await sshOk('web1', 'sudo systemctl start mariadb')
    await sleep(5000)
    expect(await readOnly('web1')).toBe('1')
    expect(await sshOk('web1', 'sudo journalctl -q -u foobar-db-fence --no-pager -o cat | tail -n 1')).toContain(
      `superseded: 10.77.0.13 says the writer is web2 since generation ${generation}`,
    )
    expect(await readOnly('web2')).toBe('0')
    // Back: web1 a replica of web2 first (provision), then promoted again.
    const after = variant('fence-after', (t) => t.replace('  primary: web1\n  replicas: [web2]', '  primary: web2\n  replicas: [web1]'))
    const p = foobar(['provision', '-i', after, '--yes'])
    expect(p.code, p.stdout + p.stderr).toBe(0)
    await waitStatusOk(after)
    expect(foobar(['db', 'promote', 'web1', '-i', after, '--yes']).code).toBe(0)
    expect(foobar(['provision', '-i', LAB_INVENTORY, '--yes']).code).toBe(0)
    await waitStatusOk(LAB_INVENTORY)
  })
})
