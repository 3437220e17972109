/**
 * Certificates over ACME (issue 7), against pebble with real HTTP-01 validation through the load balancer.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {connect} from 'node:tls'
import {beforeAll, describe, expect, test} from 'vitest'
import {foobar, foobarAsync, json} from './support/cli.js'
import {labIsUp, paths} from './support/lab.js'

const INV = 'inventories/lab-acme.yml'
const CLOSED_CA = 'https://10.77.0.1:14999/dir'

function status(): {consistent: boolean; serial: string; served: Array<{host: string; serial?: string}>} {
  const r = foobar(['cert', 'status', '-i', INV, '--json'])
  const out = json(r.stdout)
  return {consistent: out.consistent, serial: out.names[0].serial, served: out.served}
}

/** The LB's certificate, verified against pebble's root for the site name, as a browser trusting pebble would. */
function verifiedThroughLb(): Promise<{authorized: boolean; error?: string; names?: string}> {
  return new Promise((resolve) => {
    const s = connect({host: '10.77.0.11', port: 443, servername: 'www.foobar.test', ca: readFileSync(paths.pebble.roots)}, () => {
      resolve({authorized: s.authorized, names: s.getPeerCertificate().subjectaltname})
      s.destroy()
    })
    s.on('error', (e) => resolve({authorized: false, error: e.message}))
  })
}

describe.skipIf(!labIsUp())('certificates over ACME (pebble)', () => {
  beforeAll(() => {
    // Bare or converged hosts alike: provision installs a placeholder certificate until the real one is issued.
    const r = foobar(['provision', '-i', INV, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  test('issue: the certificate is deployed, served through the LB, valid for the site name, and chains to pebble', async () => {
    const r = foobar(['cert', 'issue', '-i', INV, '--force'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/served by lb1, web1, web2/)
    const tls = await verifiedThroughLb()
    expect(tls).toMatchObject({authorized: true})
    expect(tls.names).toContain('DNS:www.foobar.test')
    expect(tls.names).toContain('DNS:foobar.test')
    const s = status()
    expect(s.consistent).toBe(true)
    expect(s.served.map((x) => x.host)).toEqual(['lb1', 'web1', 'web2'])
    // The challenge tokens are gone from every web server.
    const left = foobar(['plan', '-i', INV, '--detailed-exitcode'])
    expect(left.code, left.stdout).toBe(0)
  })

  test('renew when nothing is due: no request to the CA, no output, exit 0', () => {
    const before = status().serial
    // The directory is a closed port: any request at all would fail the run.
    const r = foobar(['cert', 'renew', '-i', INV, '--directory', CLOSED_CA])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe('')
    expect(status().serial).toBe(before)
  })

  test('renew --force: a new serial is served by the LB and every backend', () => {
    const before = status().serial
    const r = foobar(['cert', 'renew', '-i', INV, '--force'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const after = status()
    expect(after.serial).not.toBe(before)
    expect(after.consistent).toBe(true)
  })

  test('CA unreachable: the old certificate is still served, the exit is non-zero, the message is clear', () => {
    const before = status().serial
    const r = foobar(['cert', 'renew', '-i', INV, '--force', '--directory', CLOSED_CA])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /the ACME directory https:\/\/10\.77\.0\.1:14999\/dir is unreachable \(ECONNREFUSED\); the current certificate stays deployed/,
    )
    const after = status()
    expect(after.serial).toBe(before)
    expect(after.consistent).toBe(true)
  })

  test('two renewals at once: one runs while the other waits; the certificate is not corrupted', async () => {
    const [a, b] = await Promise.all([
      foobarAsync(['cert', 'renew', '-i', INV, '--force']),
      foobarAsync(['cert', 'renew', '-i', INV, '--force']),
    ])
    expect(a.code, a.out).toBe(0)
    expect(b.code, b.out).toBe(0)
    const s = status()
    expect(s.consistent).toBe(true)
    // Key and certificate in the state directory belong together.
    const dir = join('inventories', '.foobar', 'lab', 'acme')
    const {createPublicKey, X509Certificate} = await import('node:crypto')
    const certKey = new X509Certificate(readFileSync(join(dir, 'site.crt'))).publicKey.export({type: 'spki', format: 'pem'})
    const key = createPublicKey(readFileSync(join(dir, 'site.key'))).export({type: 'spki', format: 'pem'})
    expect(certKey).toBe(key)
    // No temp file left; the lock file stays (a flock file: free whenever no renewal runs, never judged by its age).
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  test('cert schedule installs a working cron entry, and running it twice adds nothing', () => {
    const cronDir = mkdtempSync(join(tmpdir(), 'cron-'))
    const first = foobar(['cert', 'schedule', '-i', INV, '--cron-dir', cronDir, '--json'])
    expect(first.code, first.stderr).toBe(0)
    expect(json(first.stdout).action).toBe('installed')
    const second = foobar(['cert', 'schedule', '-i', INV, '--cron-dir', cronDir, '--json'])
    expect(json(second.stdout).action).toBe('unchanged')
    const files = readdirSync(cronDir)
    // Named after the inventory and a hash of its absolute path: another lab-acme.yml elsewhere gets its own.
    expect(files).toEqual([expect.stringMatching(/^foobar-cert-renew-lab-acme-[0-9a-f]{8}$/)])
    const entry = readFileSync(join(cronDir, files[0]!), 'utf8')
    const line = entry.split('\n').find((l) => /^\d/.test(l))!
    expect(line).toMatch(/^17 3,15 \* \* \* root .* cert renew -i .*lab-acme\.yml --random-delay 3600$/)
    // The entry works as cron would run it (without the random delay): nothing is due, so it is silent.
    const command = line.replace(/^(\S+\s+){6}/, '').replace(' --random-delay 3600', '')
    const r = spawnShell(command)
    expect(r.code, r.out).toBe(0)
    expect(r.out).toBe('')
    const removed = foobar(['cert', 'schedule', '-i', INV, '--cron-dir', cronDir, '--remove', '--json'])
    expect(json(removed.stdout).action).toBe('removed')
    expect(readdirSync(cronDir)).toEqual([])
  })
})

function spawnShell(command: string): {code: number; out: string} {
  const r = spawnSync('/bin/sh', ['-c', command], {
    encoding: 'utf8',
    cwd: '/',
    env: {PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'},
  })
  return {code: r.status ?? -1, out: r.stdout + r.stderr}
}
