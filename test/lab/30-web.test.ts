/**
 * The web tier (issue 6): verify's web checks after provision, a rolling change of the web servers' config with a
 * client loop counting failed requests through the LB, and a server that fails its health gate.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, test} from 'vitest'
import {STACK, desiredState} from '../../src/components/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {serverStates} from '../../src/components/haproxy/runtime.js'
import {prepareMaterial} from '../../src/components/index.js'
import {applyHost} from '../../src/engine/apply.js'
import {applyBatch, type Planned} from '../../src/engine/run.js'
import {httpsProbe, tlsHandshake} from '../../src/util/probes.js'
import {loadInventory} from '../../src/inventory/index.js'
import {Connection} from '../../src/remote/connection.js'
import {foobar, foobarAsync, json, variant, provisionedLab} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'

/** HTTPS requests through the LB until stopped (bounded in count and time): counts what a user would see fail. */
function clientLoop(domain: string, ca: string, maxRequests = 5000, maxMs = 180_000) {
  let ok = 0
  let failed = 0
  const errors: string[] = []
  let stop = false
  const t0 = Date.now()
  const worker = async () => {
    while (!stop && ok + failed < maxRequests && Date.now() - t0 < maxMs) {
      try {
        const r = await httpsProbe('10.77.0.11', 443, domain, '/healthz', ca)
        if (r.status === 200) ok++
        else {
          failed++
          errors.push(`HTTP ${r.status}`)
        }
      } catch (error) {
        failed++
        errors.push((error as Error).message)
      }
    }
  }
  const done = Promise.all([worker(), worker()])
  return {
    async finish() {
      stop = true
      await done
      return {ok, failed, errors}
    },
  }
}

describe.skipIf(!labIsUp())('web tier', () => {
  let domain: string
  let ca: string

  beforeAll(async () => {
    ;({domain, ca} = await provisionedLab())
  })

  test('verify: HTTPS through the LB from every backend, valid chain, redirect, HSTS, no TLS 1.0/1.1, backends UP over TLS', () => {
    const r = foobar(['verify', '-i', LAB_INVENTORY, '--limit', 'lb', '--json', '--no-lynis'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const checks = json(r.stdout).checks as Array<{check: string; ok: boolean; detail: string}>
    const byName = Object.fromEntries(checks.map((c) => [c.check, c]))
    for (const name of [
      'https: every backend answers',
      'certificate valid for the site',
      'http redirects to https',
      'hsts',
      'tls 1.0/1.1 refused',
      'haproxy backends up',
      'lb to backends over tls',
    ]) {
      expect(byName[name], name).toMatchObject({ok: true})
    }
    expect(byName['https: every backend answers']!.detail).toBe('200 from web1, web2')
  })

  test('what it serves: no version banner, no compression on HTTPS, 404 for unknown paths, no answer without the site name', async () => {
    const caFile = join(mkdtempSync(join(tmpdir(), 'foobar-ca-')), 'ca.pem')
    writeFileSync(caFile, ca)
    const curl = (path: string, ...extra: string[]) =>
      spawnSync(
        'curl',
        [
          '-sS',
          '-o',
          '/dev/null',
          '-D',
          '-',
          '--max-time',
          '10',
          '--cacert',
          caFile,
          '--resolve',
          `${domain}:443:10.77.0.11`,
          ...extra,
          `https://${domain}${path}`,
        ],
        {
          encoding: 'utf8',
        },
      )
    const page = curl('/', '-H', 'Accept-Encoding: gzip, deflate, br')
    expect(page.status, page.stderr).toBe(0)
    expect(page.stdout).toMatch(/^HTTP\/\S+ 200/)
    expect(page.stdout).not.toMatch(/^server:/im)
    expect(page.stdout).not.toMatch(/^content-encoding:/im)
    expect(curl('/no/such/page').stdout).toMatch(/^HTTP\/\S+ 404/)
    // A client that does not name the site (by address, no SNI) gets no handshake, and so no certificate.
    await expect(tlsHandshake('10.77.0.11', 443, {rejectUnauthorized: false})).rejects.toThrow()
    await expect(tlsHandshake('10.77.0.11', 443, {servername: 'other.example.test', rejectUnauthorized: false})).rejects.toThrow()
    expect((await tlsHandshake('10.77.0.11', 443, {servername: domain, ca})).names).toContain(domain)
    // The same on the backends (only the LB may reach them): nginx refuses a handshake without the site's name.
    const handshake = (sni: string) =>
      ssh('lb1', `openssl s_client -connect 10.77.0.12:443 ${sni} </dev/null 2>&1 | grep -c 'BEGIN CERTIFICATE' || true`)
    expect((await handshake('-noservername')).stdout.trim()).toBe('0')
    expect((await handshake('-servername other.example.test')).stdout.trim()).toBe('0')
    expect((await handshake(`-servername ${domain} -showcerts`)).stdout.trim()).not.toBe('0')
  })

  test('a rolling change of the web servers: one at a time, drained first, and 0 failed requests', async () => {
    // Only the web servers' nginx config changes (HSTS max-age for the web role).
    const changed = variant('rolling', (t) => t.replace('\nhosts:\n', '\nroles:\n  web:\n    tls: {hsts: {max_age: 31536000}}\n\nhosts:\n'))
    const loop = clientLoop(domain, ca)
    const r = await foobarAsync(['provision', '-i', changed, '--yes'])
    const counts = await loop.finish()
    console.log(
      `rolling change: ${counts.ok} requests ok, ${counts.failed} failed through the LB${counts.errors.length ? ` (${counts.errors.slice(0, 3).join('; ')})` : ''}`,
    )
    expect(r.code, r.out).toBe(0)
    const at = (s: string) => r.out.indexOf(s)
    expect(at('web1: draining in lb1')).toBeGreaterThan(-1)
    expect(at('web1: draining in lb1')).toBeLessThan(at('web1: health gate'))
    expect(at('web1: health gate')).toBeLessThan(at('web2: draining in lb1'))
    expect(counts.ok).toBeGreaterThan(20)
    expect(counts.failed).toBe(0)
    expect(await sshOk('web2', `grep -c 'max-age=31536000' ${NGINX_SITE}`)).toMatch(/^1/)

    const back = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(back.code, back.stdout + back.stderr).toBe(0)
  })

  test('a web server failing its health gate stops the roll and comes back in rotation on its restored config; the site answers throughout', async () => {
    const inv = await loadInventory(LAB_INVENTORY)
    const material = prepareMaterial(inv)
    const hosts = inv.hosts.filter((h) => h.roles.includes('web'))
    const conns = new Map<string, Connection>()
    for (const h of [...hosts, inv.hosts.find((x) => x.name === 'lb1')!]) conns.set(h.name, await Connection.open(h))
    try {
      // nginx -t accepts it, but the app is not on port 9: /healthz answers 502.
      const planned: Planned[] = hosts.map((host) => {
        const desired = desiredState(inv, host, {material})
        const site = desired.files.find((f) => f.path === NGINX_SITE)!
        const broken = {...site, content: site.content.replace('server 127.0.0.1:8080;', 'server 127.0.0.1:9;')}
        return {
          ms: 0,
          desired: {...desired, files: desired.files.map((f) => (f.path === NGINX_SITE ? broken : f))},
          plan: {
            host: host.name,
            changes: [
              {kind: 'file' as const, path: NGINX_SITE, action: 'update' as const, file: broken, detail: 'content', component: 'nginx'},
              {kind: 'reload' as const, name: 'nginx', how: 'reload' as const, reason: 'test', component: 'nginx'},
            ],
          },
        }
      })
      // A bounded client through the LB while the roll runs: one request every 50 ms, counted.
      let running = true
      const load = {ok: 0, failed: 0}
      const client = (async () => {
        while (running) {
          await httpsProbe('10.77.0.11', 443, domain, '/healthz', ca).then(
            (r) => void (r.status === 200 ? load.ok++ : load.failed++),
            () => void load.failed++,
          )
          await new Promise((r) => setTimeout(r, 50))
        }
      })()
      const results = await applyBatch(
        STACK,
        inv,
        planned,
        async (p) => {
          try {
            await applyHost(conns.get(p.plan!.host)!, p.desired!, p.plan!)
            return {host: p.plan!.host, status: 'changed', changes: p.plan!.changes, durationMs: 0}
          } catch (error) {
            return {host: p.plan!.host, status: 'failed', changes: p.plan!.changes, error: (error as Error).message, durationMs: 0}
          }
        },
        true,
        {concurrency: 1},
        async (h) => conns.get(h.name)!,
      )
      running = false
      await client
      console.log(`failed health gate: ${load.ok} requests ok, ${load.failed} failed through the LB`)
      expect(results.map((r) => r.status)).toEqual(['failed', 'skipped'])
      expect(results[0]!.error).toMatch(
        /nginx unhealthy after the change .*previous config restored; back in the load balancer on its previous configuration/,
      )
      expect(results[1]!.error).toMatch(/roll stopped at web1/)
      expect(load.failed).toBe(0)
      // Back to full strength: web1 serves again on its previous configuration.
      const states = await serverStates(conns.get('lb1')!)
      expect(states.find((s) => s.name === 'web1')!.adminState & 0x08).toBe(0)
      const seen = new Set<string>()
      for (let i = 0; i < 8; i++) {
        const r = await httpsProbe('10.77.0.11', 443, domain, '/healthz', ca)
        expect(r.status).toBe(200)
        seen.add(r.body.trim())
      }
      expect([...seen].sort()).toEqual(['ok web1', 'ok web2'])
    } finally {
      for (const c of conns.values()) c.close()
    }
    // The next provision converges web1 (its pending change) and verify passes.
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const v = foobar(['verify', '-i', LAB_INVENTORY, '--limit', 'lb', '--no-lynis'])
    expect(v.code, v.stdout).toBe(0)
  })
})
