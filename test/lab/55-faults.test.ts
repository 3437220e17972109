/**
 * The fault suite (issue 15): what a user sees when parts fail during a change, under a bounded load through the LB
 * (20 requests/s, counted): foobar killed with SIGKILL at several points of a provision, two provisions at once, a
 * firewall change that would lock foobar out, and a broken file someone else left in nginx's conf.d. (A host
 * unreachable mid-run and a changed host key are in 10-engine.)
 */
import {spawn} from 'node:child_process'
import {beforeAll, describe, expect, test} from 'vitest'
import {serverStates} from '../../src/components/haproxy/runtime.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {loadInventory} from '../../src/inventory/index.js'
import {Connection} from '../../src/remote/connection.js'
import {BIN, envelope, foobar, variant, waitFor, provisionedLab} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'
import {type LoadResult, pacedLoad} from './support/load.js'

const report = (what: string, l: LoadResult) =>
  console.log(
    `fault: ${what}: ${l.ok} of ${l.sent} requests ok, ${l.failed} failed, longest gap ${l.longestGapSeconds.toFixed(1)} s${l.errors.length ? ` (${l.errors.join('; ')})` : ''}`,
  )

/** Runs the CLI; `onLine` sees its stderr lines as they come (progress), and may kill it. */
function run(
  args: string[],
  onLine?: (line: string, kill: () => void) => void,
): Promise<{code: number | null; signal: string | null; out: string; stdout: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let stdout = ''
    let partial = ''
    child.stdout.on('data', (d: Buffer) => ((out += d.toString()), (stdout += d.toString())))
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
      partial += d.toString()
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const l of lines) onLine?.(l, () => child.kill('SIGKILL'))
    })
    child.on('exit', (code, signal) => resolve({code, signal, out, stdout}))
  })
}

const editByHand = (host: string) => sshOk(host, `sudo sh -c 'echo "# edited by hand" >> ${NGINX_SITE}'`)

/** Every config whole and valid, and no temp file left anywhere foobar writes. */
async function configsWhole(): Promise<void> {
  for (const h of ['web1', 'web2']) expect((await ssh(h, 'sudo nginx -t -q')).code, `${h}: nginx -t`).toBe(0)
  expect((await ssh('lb1', 'sudo haproxy -c -q -f /etc/haproxy/haproxy.cfg')).code, 'lb1: haproxy -c').toBe(0)
  for (const h of ['lb1', 'web1', 'web2']) {
    expect(await sshOk(h, "sudo find /etc /opt /usr/local/lib -name '.*.foobar-*' 2>/dev/null"), `${h}: temp files`).toBe('')
  }
}

async function drainedOnLb(): Promise<string[]> {
  const inv = await loadInventory(LAB_INVENTORY)
  const conn = await Connection.open(inv.hosts.find((h) => h.name === 'lb1')!)
  try {
    return (await serverStates(conn)).filter((s) => (s.adminState & 0x08) !== 0).map((s) => s.name)
  } finally {
    conn.close()
  }
}

describe.skipIf(!labIsUp())('faults', () => {
  let domain: string
  let ca: string

  beforeAll(async () => {
    ;({domain, ca} = await provisionedLab())
  })

  test.each([
    ['before facts', /web1: gathering facts/],
    ['while writing', /web1: writing \/etc\/nginx\/conf\.d\/foobar\.conf/],
    ['between write and reload', /web1: reloading nginx/],
  ])('SIGKILL %s: configs whole, the site answers throughout, the rerun completes and then plans 0 changes', async (point, pattern) => {
    await editByHand('web1')
    const load = pacedLoad(domain, ca)
    let seen = false
    const killed = await run(['provision', '-i', LAB_INVENTORY, '--yes'], (line, kill) => {
      if (!seen && pattern.test(line)) {
        seen = true
        kill()
      }
    })
    // Killed at that point, not after the run had finished.
    expect(killed.signal, killed.out).toBe('SIGKILL')
    expect(killed.out).not.toMatch(/^provision: /m)
    await configsWhole()
    // The rerun is not refused by the killed run's locks: they died with it.
    const rerun = await run(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(rerun.code, rerun.out).toBe(0)
    const l = await load.finish()
    report(`SIGKILL ${point}`, l)
    expect(l.failed).toBe(0)
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
    expect(await drainedOnLb()).toEqual([])
  })

  test('two provisions at once: the second is refused with the holder named (exit 5), nothing half-written', async () => {
    // Both web servers changed: the roll takes web1 then web2, so the first run still holds its locks when the
    // others start (with one host to change, a fast health gate could end it before they reach the locks).
    await editByHand('web1')
    await editByHand('web2')
    const copy = variant('concurrent', (t) => `${t}\n# the same hosts, another inventory file\n`)
    let holding!: () => void
    const locked = new Promise<void>((r) => (holding = r))
    // The first run is mid-roll (web1 drained) when the others start: it holds every lock.
    const first = run(['provision', '-i', LAB_INVENTORY, '--yes'], (line) => /web1: draining in lb1/.test(line) && holding())
    await locked
    const [same, other] = await Promise.all([
      // Same inventory: the control machine's lock.
      run(['provision', '-i', LAB_INVENTORY, '--yes', '--json']),
      // Another file naming the same hosts: the hosts' own locks.
      run(['provision', '-i', copy, '--yes', '--json']),
    ])
    const r = await first
    expect(r.code, r.out).toBe(0)
    expect(same.code, same.out).toBe(5)
    expect(envelope(same.stdout).error!.message).toMatch(
      /is locked by another foobar run: .*foobar provision -i inventories\/lab\.yml --yes/,
    )
    expect(other.code, other.out).toBe(5)
    expect(envelope(other.stdout).error!.message).toMatch(
      /another foobar run is changing .*: .*foobar provision -i inventories\/lab\.yml --yes.*nothing was changed/,
    )
    expect(r.out).not.toMatch(/cannot stat|foobar-tmp/)
    await configsWhole()
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })

  test('a firewall change that would lock foobar out: the host reverts, is back in rotation, keeps its kernel settings', async () => {
    const lockout = variant('fault-lockout', (t) =>
      t
        .replace('admin_cidrs: [10.77.0.1/32]', 'admin_cidrs: [10.77.0.100/32]\n  allow_control_address: false\n  revert_after: 30')
        .replace('  sudo: true', '  sudo: true\n  connect_timeout: 4'),
    )
    const load = pacedLoad(domain, ca)
    const r = await run(['firewall', 'apply', '-i', lockout, '--limit', 'web2', '--yes'])
    expect(r.code, r.out).toBe(1)
    expect(r.out).toMatch(/fresh SSH connection failed after the firewall change/)
    expect(r.out).toMatch(/back in the load balancer on its previous configuration/)
    expect(await drainedOnLb()).toEqual([])
    await waitFor('web2 reachable over SSH again', async () => (await ssh('web2', 'true')).code === 0, 90_000)
    const l = await load.finish()
    report('firewall lockout of web2', l)
    expect(l.failed).toBe(0)
    // SSH answers as soon as the revert has disabled the new rules; the revert goes on (ufw enable, which loads ufw's
    // own sysctl.conf, then the hardening values again): once it is done, log_martians is the hardening's 1.
    await waitFor(
      'the revert finished',
      async () => (await ssh('web2', 'systemctl is-active foobar-firewall-revert.service')).stdout.trim() !== 'active',
      30_000,
    )
    expect((await sshOk('web2', 'cat /proc/sys/net/ipv4/conf/all/log_martians')).trim()).toBe('1')
    expect(foobar(['firewall', 'status', '-i', LAB_INVENTORY, '--limit', 'web2']).code).toBe(0)
  })

  test('a broken file someone left in conf.d: web1 fails naming that file, its old config serves, it stays in rotation', async () => {
    await sshOk('web1', `sudo sh -c 'echo "this is not nginx;" > /etc/nginx/conf.d/zz-broken.conf'`)
    try {
      await editByHand('web1')
      const load = pacedLoad(domain, ca)
      const r = await run(['provision', '-i', LAB_INVENTORY, '--yes'])
      const l = await load.finish()
      report('broken foreign file on web1', l)
      expect(r.code, r.out).toBe(3)
      expect(r.out).toMatch(/the checker rejected \/etc\/nginx\/conf\.d\/zz-broken\.conf:1, not \/etc\/nginx\/conf\.d\/foobar\.conf/)
      expect(l.failed).toBe(0)
      expect(await drainedOnLb()).toEqual([])
    } finally {
      await sshOk('web1', 'sudo rm -f /etc/nginx/conf.d/zz-broken.conf')
    }
    const fixed = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0)
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })
})
