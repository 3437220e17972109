/**
 * The database endpoint (issue 17's endpoint that follows the writer, added as a component of its own under
 * issue 14's contract): an app on any web server connects to 127.0.0.1:3306 and always reaches the database host
 * that takes writes; after `db promote` it follows the new writer with no change to the app and no provision.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {foobar, foobarAsync, sleep, variant} from './support/cli.js'
import {shq} from '../../src/util/shell.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'

const mysql = (host: string, sql: string) => sshOk(host, `sudo mysql -N -B -e ${JSON.stringify(sql)}`)
/** What the app sees: a query through the endpoint on `host`, as an ordinary user over TCP. */
const throughEndpoint = (host: string, sql: string) =>
  ssh(host, `mysql -h 127.0.0.1 -P 3306 -u endpoint_app -pendpoint-app-pw -N -B -e ${JSON.stringify(sql)}`)

async function writerSeenFrom(host: string): Promise<string> {
  const r = await throughEndpoint(host, 'SELECT @@hostname')
  return r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`
}

/** Seconds until the endpoint on `host` leads to `want` (polled every 200 ms), or -1. */
async function secondsUntil(host: string, want: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if ((await writerSeenFrom(host)) === want) return (Date.now() - t0) / 1000
    await sleep(200)
  }
  return -1
}

describe.skipIf(!labIsUp())('database endpoint on the web servers', () => {
  const inv = variant('endpoint', (t) => t.replace('  replication_user: repl\n', '  replication_user: repl\n  endpoint: {}\n'))

  beforeAll(async () => {
    // apt-daily's index update once held web2's apt lock as a CI run provisioned it, and the host failed. Here a
    // process holds that lock (as apt does: an fcntl lock) from before the provision until web2 has said twice that
    // it waits for it (at most 5 minutes: web1 rolls first, and how long that takes is not this test's business):
    // web2 waits, says who holds it, and converges once it is released.
    await sshOk(
      'web2',
      `sudo systemd-run --unit=foobar-test-aptlock --collect perl -e ${shq(
        'use Fcntl; open(my $f, ">>", "/var/lib/apt/lists/lock") or die; my $s = pack("ssx4qqix4", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $s) or die; sleep 300',
      )}`,
    )
    const WAITING = /web2: waiting for \/var\/lib\/apt\/lists\/lock: held by process \d+ \(perl\)(?: \((\d+) s\))?/g
    let released: Promise<unknown> | undefined
    const release = () => (released ??= ssh('web2', 'sudo systemctl stop foobar-test-aptlock 2>/dev/null; true'))
    const r = await foobarAsync(['provision', '-i', inv, '--yes'], {
      onOutput: (out) => {
        if ([...out.matchAll(WAITING)].length >= 2) void release()
      },
    })
    await release()
    expect(r.code, r.out).toBe(0)
    const waits = [...r.out.matchAll(WAITING)]
    console.log(
      `apt lock held on web2 until it said twice that it waits: ${waits.length} waiting lines, the last at ${waits.at(-1)?.[1] ?? 0} s`,
    )
    expect(waits.length, r.out).toBeGreaterThanOrEqual(2)
    // An ordinary application account, made on the primary (it replicates): allowed from the web servers.
    await mysql(
      'web1',
      "CREATE USER IF NOT EXISTS 'endpoint_app'@'10.77.0.%' IDENTIFIED BY 'endpoint-app-pw'; GRANT SELECT ON *.* TO 'endpoint_app'@'10.77.0.%'",
    )
  })

  afterAll(async () => {
    // The rest of the suite runs the lab inventory, which has no endpoint: leave nothing of it running.
    for (const h of ['web1', 'web2'])
      await ssh(h, 'sudo systemctl disable --now foobar-db-endpoint foobar-db-writer-check 2>/dev/null; true')
  })

  test('from every web server, 127.0.0.1:3306 leads to the primary; verify says so; a second provision changes nothing', async () => {
    expect(await writerSeenFrom('web1')).toBe('web1')
    expect(await writerSeenFrom('web2')).toBe('web1')
    const v = foobar(['verify', '-i', inv, '--limit', 'web1,web2', '--no-lynis', '--json'])
    expect(v.code, v.stdout + v.stderr).toBe(0)
    expect(v.stdout).toMatch(/db endpoint leads to the writer/)
    const again = foobar(['plan', '-i', inv, '--detailed-exitcode'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
  })

  test('the writer check answers only web servers, and only with a certificate from the internal CA', async () => {
    const fromWeb = await ssh('web2', 'timeout 3 bash -c "echo > /dev/tcp/10.77.0.12/9200"')
    expect(fromWeb.code).toBe(0)
    const fromLb = await ssh('lb1', 'timeout 3 bash -c "echo > /dev/tcp/10.77.0.12/9200"')
    expect(fromLb.code).not.toBe(0)
    const noCert = await ssh('web2', 'curl -fsSk -m 5 https://10.77.0.12:9200/writer')
    expect(noCert.code).not.toBe(0)
  })

  test('a writer check started while its database is down comes back by itself once the database is up', async () => {
    // What the endpoints get from web2's check, asked as they ask it (mutual TLS, web2's name verified).
    const answer = async () =>
      (
        await ssh(
          'web1',
          'sudo curl -sS -m 3 --cacert /etc/foobar/db-endpoint/ca.pem --cert /etc/foobar/db-endpoint/client.pem --resolve web2:9200:10.77.0.13 https://web2:9200/writer',
        )
      ).stdout.trim()
    expect(await answer()).toBe('read-only')
    // The check (re)starts while the database is down, for longer than five quick tries would last.
    await sshOk('web2', 'sudo systemctl stop mariadb && sudo systemctl restart --no-block foobar-db-writer-check')
    await sleep(15_000)
    const meanwhile = (await ssh('web2', 'systemctl is-failed foobar-db-writer-check')).stdout.trim()
    await sshOk('web2', 'sudo systemctl start mariadb')
    const t0 = Date.now()
    let got = await answer()
    while (got !== 'read-only' && Date.now() - t0 < 30_000) {
      await sleep(500)
      got = await answer()
    }
    console.log(
      `db writer check: answering again ${((Date.now() - t0) / 1000).toFixed(1)} s after its database started (state while it was down: ${meanwhile})`,
    )
    expect(meanwhile).not.toBe('failed')
    expect(got).toBe('read-only')
    expect(await sshOk('web2', 'systemctl --failed --no-legend --plain')).toBe('')
  })

  test('after db promote, the endpoint follows the new writer on its own (no provision, no app change)', async () => {
    const promote = foobar(['db', 'promote', 'web2', '-i', inv, '--yes', '--write'])
    expect(promote.code, promote.stdout + promote.stderr).toBe(0)
    const web1Follows = await secondsUntil('web1', 'web2')
    const web2Follows = await secondsUntil('web2', 'web2')
    console.log(
      `db endpoint: followed the new writer in ${web1Follows.toFixed(1)} s (web1) and ${web2Follows.toFixed(1)} s (web2) after db promote returned`,
    )
    expect(web1Follows).toBeGreaterThanOrEqual(0)
    expect(web2Follows).toBeGreaterThanOrEqual(0)
    // And back: the lab matches inventories/lab.yml again.
    const back = foobar(['db', 'promote', 'web1', '-i', inv, '--yes', '--write'])
    expect(back.code, back.stdout + back.stderr).toBe(0)
    expect(await secondsUntil('web2', 'web1')).toBeGreaterThanOrEqual(0)
    const p = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(p.code, p.stdout + p.stderr).toBe(0)
  })
})
