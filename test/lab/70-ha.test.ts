/**
 * Two load balancers sharing a floating address (issue 18) on real hosts. The lab is restarted from
 * inventories/lab-ha.yml (lb1, web1, web2 and lb2 10.77.0.14; lb.vip 10.77.0.100 on the bridge) and provisioned
 * from it; afterwards it goes back to lab.yml's three hosts, with nothing of lb2 left (99-down expects exactly
 * those). Under a bounded load through the floating address (50 requests/s, each window at most 60 s), counted:
 * HAProxy stopped on the holder, then the holder powered off (its network cut and the guest halted): the address
 * moves to the other load balancer, the test prints the failed requests and the longest gap; bringing a load
 * balancer back moves nothing (non-preemptive) and fails nothing; a change to both load balancers' config rolls
 * one at a time, the standby first, with no failed request. VRRP from a host that is not a load balancer is
 * dropped by the firewall; a second provision changes nothing; verify and monitor status name the holder.
 */
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {prepareMaterial} from '../../src/components/index.js'
import {loadInventory} from '../../src/inventory/index.js'
import {readState} from '../../src/lab/index.js'
import {bootHost, stopHost, waitSsh} from '../../src/lab/hosts.js'
import {vethOf} from '../../src/lab/network.js'
import {NAME_PREFIX} from '../../src/lab/paths.js'
import {run} from '../../src/lab/exec.js'
import {httpsProbe} from '../../src/util/probes.js'
import {foobar, foobarAsync, json, sleep, waitFor} from './support/cli.js'
import {labIsUp, labSpec, paths, setLabHosts, ssh, sshOk} from './support/lab.js'
import {type LoadResult, pacedLoad} from './support/load.js'

const HA = 'inventories/lab-ha.yml'
const VIP = '10.77.0.100'
const LBS = ['lb1', 'lb2'] as const
const ADDRESS: Record<string, string> = {lb1: '10.77.0.11', lb2: '10.77.0.14', web1: '10.77.0.12'}
/** The load through the floating address: 50 requests/s, each window bounded. */
const RATE = 50
const WINDOW_MS = 60_000

const figures: string[] = []
const report = (what: string, l: LoadResult, extra = '') => {
  const line = `ha: ${what}: ${l.ok} of ${l.sent} requests ok, ${l.failed} failed, longest gap ${l.longestGapSeconds.toFixed(1)} s${extra}${l.errors.length ? ` (${l.errors.join('; ')})` : ''}`
  figures.push(line)
  console.log(line)
}

/** The load balancers that hold the address now (asked over SSH; one that does not answer holds nothing it can serve). */
async function holders(): Promise<string[]> {
  const out: string[] = []
  for (const lb of LBS) {
    const r = await ssh(lb, `ip -o addr show to ${VIP}`, {timeoutMs: 5000})
    if (r.code === 0 && r.stdout.trim() !== '') out.push(lb)
  }
  return out
}

async function theHolder(): Promise<string> {
  const h = await holders()
  expect(h, 'exactly one load balancer holds the floating address').toHaveLength(1)
  return h[0]!
}

const other = (lb: string) => (lb === 'lb1' ? 'lb2' : 'lb1')

/** Seconds until `ok` holds (polled every 200 ms), or throws naming what did not happen. */
async function secondsUntil(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if (await ok()) return (Date.now() - t0) / 1000
    await sleep(200)
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s`)
}

/** A copy of lab-ha.yml with some text replaced; its TLS state stays the lab's (an absolute state_dir). */
function haVariant(name: string, edit: (text: string) => string): string {
  const text = readFileSync(HA, 'utf8').replace('state_dir: .foobar/lab', `state_dir: ${resolve('inventories', '.foobar', 'lab')}`)
  const edited = edit(text)
  if (edited === text) throw new Error(`variant ${name}: the edit changed nothing`)
  const file = join(mkdtempSync(join(tmpdir(), 'foobar-ha-')), `${name}.yml`)
  writeFileSync(file, edited)
  return file
}

/**
 * Power loss as the network sees it: the host's link goes down at once (no goodbye from its keepalived), then
 * the guest is halted. (Halting alone would let keepalived hand the address over politely; and the lab's network
 * namespace outlives the guest, so a cut link is what a machine without power looks like.)
 */
async function powerOff(lb: string): Promise<void> {
  await run('ip', ['link', 'set', vethOf(ADDRESS[lb]!), 'down'], {what: `${lb}: link down`})
  await stopHost(paths, lb)
}

/** Power back: no address left over from before (a rebooted machine has none), the link up, the guest booted. */
async function powerOn(lb: string): Promise<void> {
  await run('ip', ['-n', `${NAME_PREFIX}${lb}`, 'addr', 'del', `${VIP}/24`, 'dev', 'eth0'], {
    what: `${lb}: stale address`,
    allowFailure: true,
  })
  await run('ip', ['link', 'set', vethOf(ADDRESS[lb]!), 'up'], {what: `${lb}: link up`})
  const host = {name: lb, address: ADDRESS[lb]!, roles: ['lb']}
  await bootHost(paths, host)
  await waitSsh(paths, host, 120_000)
}

/** Raw VRRP (IP protocol 112) as a host's kernel delivers it past its firewall: the sources seen in `seconds`. */
const LISTEN = (seconds: number) =>
  Buffer.from(
    [
      'import socket, time',
      's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)',
      's.settimeout(0.5)',
      `end = time.time() + ${seconds}`,
      'seen = set()',
      'while time.time() < end:',
      '    try:',
      '        seen.add(s.recvfrom(2048)[1][0])',
      '    except socket.timeout:',
      '        pass',
      "print(' '.join(sorted(seen)))",
    ].join('\n'),
  ).toString('base64')

/** VRRPv2 advertisements for another router id (200: never ours), sent to `to` twice a second. */
const SEND = (to: string, count: number) =>
  Buffer.from(
    [
      'import socket, time',
      's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)',
      'pkt = bytes([0x21, 200, 100, 1, 1, 1, 0, 0]) + bytes([10, 77, 0, 200]) + bytes(8)',
      `for i in range(${count}):`,
      `    s.sendto(pkt, ('${to}', 0))`,
      '    time.sleep(0.5)',
    ].join('\n'),
  ).toString('base64')

const python = (b64: string) => `echo ${b64} | base64 -d | sudo python3 -`

describe.skipIf(!labIsUp())('two load balancers sharing a floating address', () => {
  let domain: string
  let ca: string
  const load = () => pacedLoad(domain, ca, RATE, WINDOW_MS, VIP)
  const answersThroughVip = async () => (await httpsProbe(VIP, 443, domain, '/healthz', ca, 2000).catch(() => ({status: 0}))).status === 200

  beforeAll(async () => {
    // One lab per machine: the suite booted lab.yml's three hosts; this file needs lb2 too.
    const want = await labSpec(HA)
    const state = await readState(paths)
    const same =
      state?.status === 'up' &&
      state.hosts.map((h) => `${h.name}=${h.address}`).join() === want.hosts.map((h) => `${h.name}=${h.address}`).join()
    if (!same) await setLabHosts(want)
    // lab up writes it; a lab booted by an older foobar may have none (VRRPv2: at most 8 characters).
    if (!existsSync(paths.vrrpPassword)) {
      mkdirSync(dirname(paths.vrrpPassword), {recursive: true, mode: 0o700})
      writeFileSync(paths.vrrpPassword, `${randomBytes(6).toString('base64url')}\n`, {mode: 0o600})
    }
    const r = foobar(['provision', '-i', HA, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const inv = await loadInventory(HA)
    domain = inv.site.domain
    ca = prepareMaterial(inv).backendCa
  })

  afterAll(async () => {
    if (figures.length) console.log(`ha figures (README "Two load balancers"):\n  ${figures.join('\n  ')}`)
    // Back to lab.yml's three hosts, with nothing of lb2 left for the files that follow; lb1's keepalived off (lab.yml
    // has no floating address).
    await ssh('lb1', 'sudo systemctl disable --now keepalived 2>/dev/null; true')
    await setLabHosts(await labSpec(), {}, ['lb2'])
  })

  test('provisioned: keepalived on both, exactly one holds the address, the site answers through it; verify and monitor status name the holder; a second provision changes nothing', async () => {
    for (const lb of LBS) {
      expect(await sshOk(lb, 'systemctl is-active keepalived'), lb).toBe('active\n')
      expect((await ssh(lb, 'sudo keepalived -t -f /etc/keepalived/keepalived.conf')).code, `${lb}: keepalived -t`).toBe(0)
      expect(await sshOk(lb, 'sudo stat -c %a /etc/keepalived/keepalived.conf'), lb).toBe('640\n')
    }
    const holder = await theHolder()
    const r = await httpsProbe(VIP, 443, domain, '/healthz', ca)
    expect(r.status).toBe(200)

    const v = foobar(['verify', '-i', HA, '--no-lynis', '--json'])
    expect(v.code, v.stdout + v.stderr).toBe(0)
    const checks = json<{checks: Array<{host: string; check: string; ok: boolean; detail: string}>}>(v.stdout).checks
    const vip = checks.filter((c) => c.check === 'floating address')
    expect(vip.map((c) => c.host).sort()).toEqual(['lb1', 'lb2'])
    for (const c of vip) expect(c.detail).toContain(`${VIP} held by ${holder}`)
    expect(checks.filter((c) => c.check === 'https through the floating address').every((c) => c.ok)).toBe(true)

    const m = foobar(['monitor', 'status', '-i', HA, '--json'])
    expect(json<{vip: {address: string; holders: string[]; unreachable: string[]}}>(m.stdout).vip).toEqual({
      address: VIP,
      holders: [holder],
      unreachable: [],
    })

    // Transitions reached the journal, tagged foobar-vip.
    expect(await sshOk(holder, 'sudo journalctl -t foobar-vip --no-pager -o cat')).toMatch(new RegExp(`${holder} is now MASTER for ${VIP}`))

    const again = foobar(['plan', '-i', HA, '--detailed-exitcode'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
  })

  test('VRRP from a host that is not a load balancer is dropped by the firewall; from the other load balancer it arrives', async () => {
    const holder = await theHolder()
    const standby = other(holder)
    // On the standby: what its kernel delivers past the firewall. Meanwhile web1 sends it VRRP; the holder's own
    // advertisements (every second) are the control.
    const listening = ssh(standby, python(LISTEN(6)), {timeoutMs: 30_000})
    await sleep(1000)
    await sshOk('web1', python(SEND(ADDRESS[standby]!, 8)), {timeoutMs: 30_000})
    const seen = (await listening).stdout.trim().split(' ')
    expect(seen, 'the holder advertises to the standby').toContain(ADDRESS[holder])
    expect(seen, "web1's VRRP is dropped").not.toContain(ADDRESS.web1)
    // And the exchange was never disturbed: still one holder.
    expect(await theHolder()).toBe(holder)
  })

  test('HAProxy stopped on the holder: the address moves, the site answers again through it; HAProxy back: nothing moves (non-preemptive), nothing fails', async () => {
    const first = await theHolder()
    const second = other(first)
    const l = load()
    await sleep(3000)
    const t0 = Date.now()
    await sshOk(first, 'sudo systemctl stop haproxy')
    await secondsUntil('the address on the other load balancer', async () => (await holders()).join() === second)
    const moved = (Date.now() - t0) / 1000
    await secondsUntil('the site answers through the address', answersThroughVip)
    const answered = (Date.now() - t0) / 1000
    await sleep(5000)
    const out = await l.finish()
    report(
      `HAProxy stopped on ${first}`,
      out,
      `; address on ${second} after ${moved.toFixed(1)} s, site answering after ${answered.toFixed(1)} s`,
    )
    expect(await theHolder()).toBe(second)
    expect(out.longestGapSeconds, 'at most a few seconds of failures').toBeLessThanOrEqual(5)

    // HAProxy back on the first: it stands by; the address stays where it is (nopreempt); no request fails.
    const back = load()
    await sshOk(first, 'sudo systemctl start haproxy')
    await sleep(10_000)
    const quiet = await back.finish()
    report(`HAProxy back on ${first} (non-preemptive)`, quiet)
    expect(await theHolder()).toBe(second)
    expect(quiet.failed).toBe(0)
    expect(await sshOk(first, 'sudo journalctl -t foobar-vip --no-pager -o cat')).toMatch(new RegExp(`${first} is now FAULT for ${VIP}`))
  })

  test('the holder powered off: the address moves to the other; powered on again: it stays (non-preemptive), nothing fails', async () => {
    const gone = await theHolder()
    const survivor = other(gone)
    const l = load()
    await sleep(3000)
    const t0 = Date.now()
    await powerOff(gone)
    await secondsUntil(
      'the address on the surviving load balancer',
      async () => (await ssh(survivor, `ip -o addr show to ${VIP}`)).stdout.trim() !== '',
    )
    const moved = (Date.now() - t0) / 1000
    await secondsUntil('the site answers through the address', answersThroughVip)
    const answered = (Date.now() - t0) / 1000
    await sleep(5000)
    const out = await l.finish()
    report(
      `${gone} powered off`,
      out,
      `; address on ${survivor} after ${moved.toFixed(1)} s, site answering after ${answered.toFixed(1)} s`,
    )
    expect(out.longestGapSeconds, 'a few seconds of failures at most').toBeLessThanOrEqual(6)

    const back = load()
    await powerOn(gone)
    await waitFor(
      `${gone}: keepalived active again`,
      async () => (await ssh(gone, 'systemctl is-active keepalived')).stdout.trim() === 'active',
      60_000,
    )
    await sleep(10_000)
    const quiet = await back.finish()
    report(`${gone} powered on again (non-preemptive)`, quiet)
    expect(await theHolder()).toBe(survivor)
    expect(quiet.failed).toBe(0)
  })

  test('a change to both load balancers under load: one at a time, the standby first, no failed request; back again the same way', async () => {
    const holder = await theHolder()
    const standby = other(holder)
    const leastconn = haVariant('ha-leastconn', (t) => t.replace('  balance: roundrobin\n', '  balance: leastconn\n'))
    for (const inventory of [leastconn, HA]) {
      const l = load()
      await sleep(2000)
      const r = await foobarAsync(['provision', '-i', inventory, '--yes'])
      await sleep(2000)
      const out = await l.finish()
      report(`rolling change of both load balancers (${inventory === HA ? 'back to roundrobin' : 'leastconn'})`, out)
      expect(r.code, r.out).toBe(0)
      const reloadOf = (lb: string) => r.out.search(new RegExp(`${lb}: reloading haproxy`))
      expect(reloadOf(standby), r.out).toBeGreaterThanOrEqual(0)
      expect(reloadOf(standby), 'the standby first').toBeLessThan(reloadOf(holder))
      expect(out.failed).toBe(0)
      expect(await theHolder()).toBe(holder)
    }
    rmSync(dirname(leastconn), {recursive: true, force: true, maxRetries: 5})
    const again = foobar(['plan', '-i', HA, '--detailed-exitcode'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
  })
})
