/**
 * The engine against real hosts (issue 4): converge -> idempotence -> verify, drift, validation failure, a
 * connection cut mid-apply, host keys, an unreachable host. Runs the real CLI (dist/) against the lab.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, test} from 'vitest'
import {desiredState} from '../../src/components/index.js'
import {prepareMaterial} from '../../src/components/index.js'
import {applyHost} from '../../src/engine/apply.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {loadInventory} from '../../src/inventory/index.js'
import {Connection} from '../../src/remote/connection.js'
import {httpsProbe} from '../../src/util/probes.js'
import {vethOf} from '../../src/lab/network.js'
import {BIN, envelope, foobar, json, variant} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, sshOk} from './support/lab.js'

async function siteStatus(): Promise<number> {
  const inv = await loadInventory(LAB_INVENTORY)
  const material = prepareMaterial(inv)
  const lb = inv.hosts.find((h) => h.roles.includes('lb'))!
  return (await httpsProbe(lb.address, 443, inv.site.domain, '/healthz', material.backendCa)).status
}

describe.skipIf(!labIsUp())('engine on the lab', () => {
  beforeAll(() => {
    // The CLI runs from dist/: `npm test` builds first.
    expect(spawnSync('test', ['-f', join('dist', 'commands', 'provision.js')]).status).toBe(0)
  })

  test('first provision of bare hosts installs and configures nginx, HAProxy and MariaDB', async () => {
    const t0 = Date.now()
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    const seconds = (Date.now() - t0) / 1000
    console.log(`first provision: ${seconds.toFixed(1)} s`)
    expect(r.stderr + r.stdout).not.toMatch(/"status": 1/)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const out = json(r.stdout)
    expect(out.summary.failed).toBe(0)
    expect(out.summary.changed).toBe(3)
    // The primary's own statements ran with semi-sync's wait for an absent replica off (none was connected yet);
    // the setting is back as MariaDB has it, so an application's write still waits for a replica that is away.
    expect(await sshOk('web1', 'sudo mysql -N -B -e "SELECT @@GLOBAL.rpl_semi_sync_master_wait_no_slave"')).toBe('1\n')
  })

  test('the site answers over HTTPS through the load balancer, from both web servers', async () => {
    const inv = await loadInventory(LAB_INVENTORY)
    const material = prepareMaterial(inv)
    // HAProxy marks a backend UP after two passing health checks (rise 2, inter 2s): allow it a few seconds.
    const seen = new Set<string>()
    const deadline = Date.now() + 20_000
    while (seen.size < 2 && Date.now() < deadline) {
      const r = await httpsProbe('10.77.0.11', 443, inv.site.domain, '/healthz', material.backendCa)
      if (r.status === 200) {
        seen.add(r.body.trim())
        expect(r.headers['strict-transport-security']).toMatch(/max-age=63072000/)
      } else await new Promise((res) => setTimeout(res, 500))
    }
    expect([...seen].sort()).toEqual(['ok web1', 'ok web2'])
    for (const h of ['web1', 'web2'])
      expect(await sshOk(h, 'systemctl is-active mariadb nginx foobar-app')).toMatch(/^active\nactive\nactive/)
    expect(await sshOk('lb1', 'systemctl is-active haproxy')).toMatch(/^active/)
  })

  test('a second provision changes nothing, and plan then shows nothing (idempotence), verify passes', () => {
    const t0 = Date.now()
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    console.log(`no-op provision: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    expect(r.code, r.stderr).toBe(0)
    const out = json(r.stdout)
    expect(out.summary).toMatchObject({ok: 3, changed: 0, failed: 0, changes: 0})
    const plan = foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode'])
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
    expect(plan.stdout).toMatch(/3 ok, 0 changed/)
    const verify = foobar(['verify', '-i', LAB_INVENTORY, '--json', '--no-lynis'])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    expect(json(verify.stdout).failed).toBe(0)
  })

  test('a file edited by hand shows in plan as a diff, and provision restores it', async () => {
    await sshOk('lb1', `sudo sed -i 's/timeout client 30s/timeout client 99s/' /etc/haproxy/haproxy.cfg`)
    const plan = foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode'])
    expect(plan.code).toBe(4)
    expect(plan.stdout).toMatch(/update \/etc\/haproxy\/haproxy.cfg/)
    expect(plan.stdout).toMatch(/-    timeout client 99s/)
    expect(plan.stdout).toMatch(/\+    timeout client 30s/)
    expect(plan.stdout).toMatch(/reload haproxy/)
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(await sshOk('lb1', 'grep "timeout client" /etc/haproxy/haproxy.cfg')).toMatch(/30s/)
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })

  test('an invalid config fails validation: the old config stays and the site keeps serving', async () => {
    const inv = await loadInventory(LAB_INVENTORY)
    const web1 = inv.hosts.find((h) => h.name === 'web1')!
    const desired = desiredState(inv, web1, {material: prepareMaterial(inv)})
    const site = desired.files.find((f) => f.path === NGINX_SITE)!
    const broken = {...site, content: `${site.content}\nthis is not an nginx directive;\n`}
    const before = await sshOk('web1', `sha256sum ${NGINX_SITE}`)
    const conn = await Connection.open(web1)
    try {
      const plan = {
        host: 'web1',
        changes: [
          {kind: 'file' as const, path: NGINX_SITE, action: 'update' as const, file: broken, detail: 'content'},
          {kind: 'reload' as const, name: 'nginx', how: 'reload' as const, reason: 'test'},
        ],
      }
      await expect(applyHost(conn, {...desired, files: [broken]}, plan)).rejects.toThrow(
        /validation failed: \/etc\/nginx\/conf.d\/foobar.conf \(previous file restored\)/,
      )
    } finally {
      conn.close()
    }
    expect(await sshOk('web1', `sha256sum ${NGINX_SITE}`)).toBe(before)
    expect(await sshOk('web1', 'systemctl is-active nginx')).toMatch(/^active/)
    expect(await siteStatus()).toBe(200)
  })

  test('a connection cut mid-apply leaves no half-written file, and the next run converges', async () => {
    // Many pending writes: drift every managed config on web2.
    await sshOk(
      'web2',
      `for f in ${NGINX_SITE} /opt/foobar-app/app.py /etc/mysql/mariadb.conf.d/60-foobar.cnf /etc/apt/apt.conf.d/80foobar-proxy; do echo '# drift' | sudo tee -a $f >/dev/null; done`,
    )
    const child = spawn(process.execPath, [BIN, 'provision', '-i', LAB_INVENTORY, '--yes', '--limit', 'web2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    await new Promise<void>((resolve) => {
      // Progress lines go to stderr.
      child.stderr.on('data', (d: Buffer) => {
        output += d.toString()
        // Cut the connection as soon as the first file is being written: the host is mid-apply.
        if (/writing /.test(output) && child.exitCode === null) {
          child.kill('SIGKILL')
        }
      })
      child.on('exit', () => resolve())
    })
    expect(output).toMatch(/writing /)
    // Every managed file is either the old or the new version, whole: never torn.
    for (const f of [NGINX_SITE, '/etc/mysql/mariadb.conf.d/60-foobar.cnf']) {
      const content = await sshOk('web2', `sudo cat ${f}`)
      expect(content.startsWith('# Managed by foobar')).toBe(true)
    }
    // Nor a temp file beside them (CI on 9d95860: .80foobar-proxy.foobar-… left on web2, found by 55-faults).
    expect(await sshOk('web2', "sudo find /etc /opt /usr/local/lib -name '.*.foobar-*' 2>/dev/null")).toBe('')
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const again = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    expect(json(again.stdout).summary).toMatchObject({changed: 0, changes: 0, failed: 0})
    expect(await sshOk('web2', `sudo grep -c '# drift' ${NGINX_SITE} || true`)).toMatch(/^0/)
  })

  test('unknown and changed host keys are refused; --accept-new-host-keys records an unknown one', () => {
    const emptyKnown = join(mkdtempSync(join(tmpdir(), 'foobar-kh-')), 'known_hosts')
    writeFileSync(emptyKnown, '')
    const unknown = variant('unknown-keys', (t) => t.replace(/known_hosts: .*/, `known_hosts: ${emptyKnown}`))
    const r1 = foobar(['plan', '-i', unknown, '--limit', 'lb1'], {HOME: mkdtempSync(join(tmpdir(), 'home-'))})
    expect(r1.code).toBe(1)
    expect(r1.stderr + r1.stdout).toMatch(/unknown host key ssh-ed25519 SHA256:/)
    expect(r1.stderr + r1.stdout).toMatch(/--accept-new-host-keys/)

    const real = readFileSync('/var/lib/foobar-lab/known_hosts', 'utf8')
    const wrongKey = 'AAAAC3NzaC1lZDI1NTE5AAAAIDHtpAQKx6QO3Pgm5B2kLqM2Ps2ylpwCh4E8Qk1A1b0v'
    const changedFile = join(mkdtempSync(join(tmpdir(), 'foobar-kh-')), 'known_hosts')
    writeFileSync(changedFile, real.replace(/^10\.77\.0\.11 ssh-ed25519 \S+/m, `10.77.0.11 ssh-ed25519 ${wrongKey}`))
    const changed = variant('changed-keys', (t) => t.replace(/known_hosts: .*/, `known_hosts: ${changedFile}`))
    const r2 = foobar(['plan', '-i', changed, '--limit', 'lb1', '--accept-new-host-keys'], {HOME: mkdtempSync(join(tmpdir(), 'home-'))})
    expect(r2.code).toBe(1)
    expect(r2.stderr + r2.stdout).toMatch(/HOST KEY CHANGED/)

    const r3 = foobar(['plan', '-i', unknown, '--limit', 'lb1', '--accept-new-host-keys'], {HOME: mkdtempSync(join(tmpdir(), 'home-'))})
    expect(r3.code, r3.stdout + r3.stderr).toBe(0)
    expect(readFileSync(emptyKnown, 'utf8')).toMatch(/^10\.77\.0\.11 ssh-ed25519 /)
  })

  test('one unreachable host gives exit 3, and the others are done', async () => {
    await sshOk('web1', `echo '# drift' | sudo tee -a ${NGINX_SITE} >/dev/null`)
    const veth = vethOf('10.77.0.13')
    spawnSync('ip', ['link', 'set', veth, 'down'])
    let r
    try {
      const fast = variant('fast-timeout', (t) => t.replace('  sudo: true', '  sudo: true\n  connect_timeout: 4'))
      r = foobar(['provision', '-i', fast, '--yes', '--json'])
    } finally {
      spawnSync('ip', ['link', 'set', veth, 'up'])
    }
    expect(r.code, r.stdout + r.stderr).toBe(3)
    const out = envelope(r.stdout)
    expect(out.status).toBe(3)
    expect(Object.keys(out.error!.failed!)).toEqual(['web2'])
    expect(out.result.hosts.map((h: {host: string}) => h.host).sort()).toEqual(['lb1', 'web1', 'web2'])
    expect(await sshOk('web1', `grep -c '# drift' ${NGINX_SITE} || true`)).toMatch(/^0/)
  })
})
