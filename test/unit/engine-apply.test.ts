/*
 * provision through the transport seam: the real stack (src/components) applied by the engine to fake Debian hosts
 * whose shell scripts run for real in a temp root (test/unit/support/fake-host.ts). What an operator would notice:
 * the order of the steps on a bare host, a second run that finds nothing to do, and a guarded step whose fresh
 * connection fails being undone by the host itself.
 */
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {UFW_RULES_FILE} from '../../src/components/firewall/index.js'
import {SSHD_DROPIN} from '../../src/components/hardening/index.js'
import {TLS_PATHS} from '../../src/components/tls/profile.js'
import {aptLockHeld, whileAptLocked} from '../../src/engine/apply.js'
import {LAST_APPLY, PENDING_FILE} from '../../src/engine/facts.js'
import {type RunOptions, runPlan} from '../../src/engine/run.js'
import type {Inventory} from '../../src/inventory/index.js'
import {
  FAST_HEALTH,
  type FakeFleet,
  type FakeHost,
  type FakeHostOptions,
  TEST_MATERIAL,
  fakeFleet,
  fastTimers,
  testInventory,
} from './support/fake-host.js'

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))

function setUp(inv: Inventory, o: FakeHostOptions = {}) {
  const fleet = fakeFleet(inv, o)
  fleets.push(fleet)
  const run = (names: string[], apply: boolean, extra: Partial<RunOptions> = {}) =>
    runPlan(
      STACK,
      inv,
      inv.hosts.filter((h) => names.includes(h.name)),
      {transport: fleet.transport, apply, concurrency: 4, material: TEST_MATERIAL, health: FAST_HEALTH, ...extra},
    )
  return {fleet, run}
}

/** Each pattern matches a line after the previous one's. */
function expectInOrder(lines: string[], patterns: RegExp[]): void {
  let from = 0
  for (const p of patterns) {
    const i = lines.findIndex((l, k) => k >= from && p.test(l))
    expect(i, `${p} after line ${from} of:\n${lines.map((l, k) => `${k} ${l}`).join('\n')}`).toBeGreaterThanOrEqual(0)
    from = i + 1
  }
}

/** Temp files of an atomic write left anywhere on the host. */
function strayTempFiles(host: FakeHost): string[] {
  return (readdirSync(host.root, {recursive: true}) as string[]).filter((p) => /\.foobar-[0-9a-f]{12}$/.test(p)).map((p) => join('/', p))
}

describe('provisioning a bare host', () => {
  const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'])
  const {fleet, run} = setUp(inv)
  const web1 = fleet.hosts.web1!
  let first: Awaited<ReturnType<typeof run>>

  test('every step succeeds', async () => {
    first = await run(['web1'], true)
    expect(first.hosts.map((h) => [h.host, h.status, h.error])).toEqual([['web1', 'changed', undefined]])
  })

  test('packages, then files, then services in component order (the app before nginx), then live steps, then the guarded ones', () => {
    expectInOrder(web1.journal(), [
      /^apt-get update$/,
      /^apt-get install .*\bnginx\b/,
      // Files: each checked by its daemon's checker as it is written.
      /^nginx -t -q$/,
      /^sshd -t$/,
      // The app's unit file is new.
      /^systemctl daemon-reload$/,
      // Services, none of which the packages started (foobar's policy-rc.d): the app is up before nginx's health
      // check asks it; then the hardening's.
      /^systemctl start foobar-app$/,
      /^systemctl start nginx$/,
      /^systemctl start fail2ban$/,
      /^systemctl start usbguard$/,
      // Live steps (kernel settings) on the existing connection.
      /^sysctl kernel\.kptr_restrict=2$/,
      // Guarded: sshd first (hardening comes before the firewall), each behind a revert timer cancelled only
      // after a fresh connection worked; the firewall last of all.
      /^systemd-run foobar-sshd-revert in 90s/,
      /^systemctl reload ssh$/,
      /^systemctl stop foobar-sshd-revert\.timer$/,
      /^systemd-run foobar-firewall-revert in 90s/,
      /^ufw enable$/,
      /^systemctl stop foobar-firewall-revert\.timer$/,
    ])
    expect(web1.journal().at(-1)).toBe('systemctl stop foobar-firewall-revert.timer')
  })

  test("a drop-in the packages' maintainer scripts must find is written before them, and systemd told, once", () => {
    const scripts = web1.log.map((c) => c.script)
    const dropIn = '/etc/systemd/system/usbguard.service.d/60-foobar.conf'
    const writes = scripts.flatMap((s, i) => (s.startsWith('set -e\numask 022;') && s.includes(dropIn) ? [i] : []))
    const install = scripts.findIndex((s) => s.includes('apt-get') && s.includes(' install '))
    expect(writes).toHaveLength(1)
    expect(writes[0]).toBeLessThan(install)
    expect(scripts.slice(writes[0], install).some((s) => s === 'systemctl daemon-reload')).toBe(true)
    expect(web1.file(dropIn)).toContain('ConditionVirtualization=!container')
  })

  test('the reloads are recorded on the host before anything changes, and the record is gone at the end', () => {
    const scripts = web1.log.map((c) => c.script)
    const recorded = scripts.findIndex((s) => s.includes(PENDING_FILE) && s.includes('sort -u'))
    expect(recorded).toBeGreaterThan(0)
    expect(scripts.findIndex((s) => s.includes('apt-get'))).toBeGreaterThan(recorded)
    expect(web1.exists(PENDING_FILE)).toBe(false)
  })

  test('when foobar changed the host is recorded on it, by its clock: before the first change and again at the end', () => {
    const scripts = web1.log.map((c) => c.script)
    const marks = scripts.flatMap((s, i) => (s.includes(LAST_APPLY) && s.includes('date +%s') ? [i] : []))
    expect(marks).toHaveLength(2)
    expect(marks[0]).toBeLessThan(scripts.findIndex((s) => s.includes('apt-get')))
    expect(marks[1]).toBeGreaterThan(scripts.findIndex((s) => s.includes('ufw') && s.includes('enable')))
    const written = Number(web1.file(LAST_APPLY))
    expect(Math.abs(written - Date.now() / 1000)).toBeLessThan(60)
  })

  test('the files go in a round trip per batch, not one each (issue 20): the drop-ins before the packages, the rest after', () => {
    const writes = web1.log.filter((c) => c.script.startsWith('set -e\numask 022;'))
    const files = writes.reduce((n, c) => n + (c.script.match(/^mv -fT /gm)?.length ?? 0), 0)
    console.log(`bare web1: ${files} files written in ${writes.length} round trips`)
    expect(files).toBeGreaterThan(20)
    expect(writes.length).toBeLessThanOrEqual(3)
    // Every file of the plan is on the host with its content.
    for (const p of [NGINX_SITE, UFW_RULES_FILE, SSHD_DROPIN]) expect(web1.exists(p), p).toBe(true)
  })

  test('no service is touched before the last file is written', () => {
    const scripts = web1.log.map((c) => c.script)
    const writes = scripts.flatMap((s, i) => (s.startsWith('set -e\numask 022;') || s.includes('cp -P ') ? [i] : []))
    const lastWrite = writes.at(-1) ?? -1
    const firstService = scripts.findIndex((s) => /^systemctl (start|reload|restart) |systemctl start /m.test(s))
    expect(lastWrite).toBeGreaterThan(0)
    expect(firstService).toBeGreaterThan(lastWrite)
  })

  test('each guarded step is confirmed by a fresh connection (not the one the run uses)', () => {
    // One connection for the run, one fresh one per guarded step.
    expect(fleet.transport.opened.filter((n) => n === 'web1')).toHaveLength(3)
    const fresh = web1.log.filter((c) => c.script === 'true' && !c.root)
    expect(fresh).toHaveLength(2)
    const seqOf = (re: RegExp) => web1.log.find((c) => re.test(c.script))!.seq
    expect(fresh[0]!.seq).toBeGreaterThan(seqOf(/systemctl reload ssh/))
    expect(fresh[0]!.seq).toBeLessThan(seqOf(/systemctl stop foobar-sshd-revert\.timer/))
    expect(fresh[1]!.seq).toBeGreaterThan(seqOf(/grep -v -e '\^#' -e '\^\$' \/etc\/foobar\/firewall\/ufw\.rules/))
    expect(fresh[1]!.seq).toBeLessThan(seqOf(/systemctl stop foobar-firewall-revert\.timer/))
    expect(web1.unit('foobar-sshd-revert.timer').active).toBe('inactive')
    expect(web1.unit('foobar-firewall-revert.timer').active).toBe('inactive')
  })

  test('the host is as the inventory says: files, services, the default site gone, firewall and kernel settings', () => {
    expect(web1.file(NGINX_SITE)).toContain('server_name www.foobar.test foobar.test')
    expect(web1.file(TLS_PATHS.key)).toBe(TEST_MATERIAL.siteKey)
    expect(web1.mode(TLS_PATHS.key)).toBe(0o600)
    expect(web1.owner(TLS_PATHS.key)).toBe('root:root')
    // nginx's package brought its default site; the plan made after installing it removed it again.
    expect(web1.exists('/etc/nginx/sites-enabled/default')).toBe(false)
    expect(web1.unit('foobar-app')).toEqual({enabled: 'enabled', active: 'active'})
    expect(web1.unit('nginx')).toEqual({enabled: 'enabled', active: 'active'})
    expect(web1.file('/etc/ufw/ufw.conf')).toContain('ENABLED=yes')
    expect(web1.file('/etc/ufw/user.rules')).toContain('### tuple ### allow tcp 22 0.0.0.0/0 any 10.77.0.1 in')
    expect(web1.file(UFW_RULES_FILE)).toContain('allow in proto tcp from 10.77.0.1/32 to any port 22')
    expect(web1.sysctl('kernel.kptr_restrict')).toBe('2')
    expect(web1.mode('/etc/ssh/sshd_config')).toBe(0o600)
    expect(web1.file(SSHD_DROPIN)).toContain('PermitRootLogin no')
    expect(strayTempFiles(web1)).toEqual([])
  })

  test('a second plan against the converged host has no change at all', async () => {
    const again = await run(['web1'], false)
    expect(again.hosts).toMatchObject([{host: 'web1', status: 'unchanged', changes: []}])
  })

  test('and so has a second provision: nothing is written, reloaded or recorded', async () => {
    const before = web1.log.length
    const journal = web1.journal().length
    const again = await run(['web1'], true)
    expect(again.hosts).toMatchObject([{host: 'web1', status: 'unchanged', changes: []}])
    expect(web1.journal().length).toBe(journal)
    // Connecting and one facts script: nothing else.
    expect(web1.log.slice(before).map((c) => c.script.split('\n')[0])).toEqual([
      'echo "@@os $( . /etc/os-release 2>/dev/null; echo "$ID $VERSION_ID")"',
    ])
  })
})

describe('a guarded step whose fresh connection fails', () => {
  const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'], {lean: true})
  let template: Promise<FakeFleet> | undefined
  /** A copy of a provisioned web1. */
  async function converged() {
    template ??= (async () => {
      const {fleet, run} = setUp(inv)
      expect((await run(['web1'], true)).hosts[0]!.status).toBe('changed')
      return fleet
    })()
    const fleet = (await template).clone()
    fleets.push(fleet)
    const run = async (apply: boolean) =>
      (
        await runPlan(STACK, inv, [inv.hosts[1]!], {
          transport: fleet.transport,
          apply,
          concurrency: 1,
          material: TEST_MATERIAL,
          health: FAST_HEALTH,
        })
      ).hosts[0]!
    return {web1: fleet.hosts.web1!, run}
  }

  test('the firewall: the run fails naming the host and what happens next; the host puts its previous rules back on its own', async () => {
    const {web1, run} = await converged()
    // Someone reset ufw's rules by hand: foobar plans to activate them again.
    web1.put('/etc/ufw/user.rules', '')
    expect((await run(false)).changes).toMatchObject([{kind: 'live', component: 'firewall', action: {kind: 'activate', guarded: true}}])
    // This time the new rules shut SSH out: the connection foobar holds survives, a new one does not.
    web1.on(/ufw --force enable/, (_c, h) => {
      h.refusing = 'connect ETIMEDOUT 10.77.0.12:22'
    })
    const r = await run(true)
    expect(r).toMatchObject({host: 'web1', status: 'failed'})
    expect(r.error).toBe(
      'web1: a fresh SSH connection failed after the firewall change (web1: cannot connect to deploy@10.77.0.12:22: connect ETIMEDOUT 10.77.0.12:22); the host restores its previous rules on its own within 90s',
    )
    // The revert is armed on the host, not in foobar: it fires though foobar is gone.
    expect(web1.unit('foobar-firewall-revert.timer').active).toBe('active')
    expect(web1.file('/etc/ufw/user.rules')).toContain('### tuple ###')
    const fired = await web1.fireTimer('foobar-firewall-revert')
    expect(fired.code, fired.stderr).toBe(0)
    expect(web1.file('/etc/ufw/user.rules')).toBe('')
    expect(web1.file('/etc/ufw/ufw.conf')).toContain('ENABLED=yes')
    // The filter tables come back from the snapshot taken before the change (ufw's chains with them, on a real host).
    expect(web1.journal().slice(-3)).toEqual(['timer foobar-firewall-revert fired', 'iptables-restore', 'ip6tables-restore'])
  })

  test('sshd: the new drop-in is in place until the timer puts the previous one back and reloads ssh', async () => {
    const {web1, run} = await converged()
    const edited = '# edited by hand\nPermitRootLogin prohibit-password\n'
    web1.put(SSHD_DROPIN, edited)
    web1.on(/^sshd -t && systemctl reload ssh$/, (_c, h) => {
      h.refusing = 'All configured authentication methods failed'
    })
    // sshd is given three tries a second apart to listen again: milliseconds here.
    const restore = fastTimers()
    const r = await run(true).finally(restore)
    expect(r.error).toBe(
      'web1: a fresh SSH connection failed after the sshd change (web1: cannot connect to deploy@10.77.0.12:22: All configured authentication methods failed); the host restores its previous config on its own within 90s',
    )
    expect(web1.file(SSHD_DROPIN)).toContain('PermitRootLogin no')
    expect(web1.unit('foobar-sshd-revert.timer').active).toBe('active')
    // Still armed: a run now would race it, so it refuses to change anything.
    web1.refusing = false
    expect((await run(true)).error).toBe('web1: a sshd revert from an earlier unconfirmed change is still pending; wait 90s and run again')
    const fired = await web1.fireTimer('foobar-sshd-revert')
    expect(fired.code, fired.stderr).toBe(0)
    expect(web1.file(SSHD_DROPIN)).toBe(edited)
    expect(web1.journal().slice(-2)).toEqual(['timer foobar-sshd-revert fired', 'systemctl reload ssh'])
  })
})

describe('the health gate waits only where the daemon makes it (issue 20: no idle waits)', () => {
  test('after a start it probes at once; after a reload (a signal systemctl does not wait for) it settles first', async () => {
    const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'], {lean: true})
    // nginx installed and running before foobar came: its config changes, so it is reloaded.
    const {fleet, run} = setUp(inv, {packages: ['nginx']})
    const web1 = fleet.hosts.web1!
    const at: Array<[string, number]> = []
    // (A start resets the unit's failed state first: `systemctl reset-failed X 2>/dev/null; systemctl start X`.)
    const RESET = /^systemctl reset-failed \S+ 2>\/dev\/null; /
    web1.on(
      /^(?:systemctl reset-failed \S+ 2>\/dev\/null; )?systemctl (start|reload|is-active) (foobar-app|nginx)$/,
      (c) => void at.push([c.script.replace(RESET, ''), Date.now()]),
    )
    // A probe round asks each unit's state in the same round trip as its check (apply.ts probeAllScript, one service
    // alone in turn); services are enabled and started, when they are not running, in one round trip (bringUpAllScript).
    const unitOf = (script: string) => /is-active '?([\w-]+)/.exec(script)![1]
    web1.on(/^echo '@@probe-of (foobar-app|nginx)'\n/, (c) => void at.push([`systemctl is-active ${unitOf(c.script)}`, Date.now()]))
    web1.on(/fb_was=\$\(systemctl is-active '?(foobar-app|nginx)'?\)/, (c) => void at.push([`bring up ${unitOf(c.script)}`, Date.now()]))
    const settleMs = 1500
    const r = await run(['web1'], true, {health: {settleMs, everyMs: 5, timeoutMs: 5000}})
    expect(r.hosts[0]!.status, r.hosts[0]!.error).toBe('changed')
    /** From the command to the first probe of the service after it. */
    const gap = (command: string) => {
      const i = at.findIndex(([s]) => s === command)
      expect(i, `${command} in ${JSON.stringify(at)}`).toBeGreaterThanOrEqual(0)
      const name = command.split(' ').pop()!
      const probe = at.slice(i + 1).find(([s]) => s === `systemctl is-active ${name}`)!
      return probe[1] - at[i]![1]
    }
    // foobar-app was not running: started, then probed without a pause.
    expect(gap('bring up foobar-app')).toBeLessThan(settleMs)
    expect(web1.journal()).toContain('systemctl start foobar-app')
    // Round trips for a service started and healthy at once: one to enable and start it, one per probe (two passes).
    expect(at.filter(([s]) => s.endsWith(' foobar-app')).map(([s]) => s)).toEqual([
      'bring up foobar-app',
      'systemctl is-active foobar-app',
      'systemctl is-active foobar-app',
    ])
    // nginx was running (installed before): reloaded, then the settle before the first probe.
    expect(gap('systemctl reload nginx')).toBeGreaterThanOrEqual(settleMs)
  })
})

describe('a service that failed before the run', () => {
  const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'])
  const {fleet, run} = setUp(inv)
  const web1 = fleet.hosts.web1!

  test('provisioned', async () => {
    expect((await run(['web1'], true)).hosts.map((h) => h.status)).toEqual(['changed'])
  })

  test('a service left failed at its start limit (restarts at boot) is started again: its failed state reset first', async () => {
    web1.setUnit('nginx', 'enabled', 'failed')
    web1.startLimited('nginx')
    const again = await run(['web1'], true)
    expect(again.hosts.map((h) => [h.host, h.status, h.error])).toEqual([['web1', 'changed', undefined]])
    expect(web1.unit('nginx').active).toBe('active')
  })
})

describe('apt-get update against a mirror that fails', () => {
  const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'])
  const {fleet, run} = setUp(inv)

  test('a failed index update is tried once more (a stalled fetch fails after 30 s of silence), then the install goes on', async () => {
    const web1 = fleet.hosts.web1!
    web1.fail('apt-get', 'E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Connection timed out', {once: true})
    const r = await run(['web1'], true)
    expect(r.hosts.map((h) => [h.host, h.status, h.error])).toEqual([['web1', 'changed', undefined]])
    const updates = web1.log.filter((c) => c.script.includes('apt-get') && c.script.includes(' update'))
    expect(updates).toHaveLength(2)
    expect(updates[0]!.script).toContain('-o Acquire::http::Timeout=30')
    expect(web1.journal().filter((l) => l.startsWith('apt-get install'))).toHaveLength(1)
  })

  test("a failed install takes back the drop-in written for it: the host has none of the run's files", async () => {
    const fresh = setUp(inv)
    const web1 = fresh.fleet.hosts.web1!
    web1.fail('apt-get-install', 'E: Unable to fetch some archives')
    const r = await fresh.run(['web1'], true)
    expect(r.hosts[0]!.status).toBe('failed')
    const scripts = web1.log.map((c) => c.script)
    expect(
      scripts.some((s) => s.startsWith('set -e\numask 022;') && s.includes('/etc/systemd/system/usbguard.service.d/60-foobar.conf')),
    ).toBe(true)
    expect(web1.exists('/etc/systemd/system/usbguard.service.d/60-foobar.conf')).toBe(false)
    // systemd is told again, after the failed install.
    const install = scripts.findIndex((s) => s.includes('apt-get') && s.includes(' install '))
    expect(scripts.slice(install + 1)).toContain('systemctl daemon-reload')
  })

  test('one that fails twice fails the host, naming apt-get update and its error, with nothing installed', async () => {
    const lb1 = fleet.hosts.lb1!
    lb1.fail('apt-get', 'E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Connection timed out')
    const r = await run(['lb1'], true)
    expect(r.hosts[0]!.status).toBe('failed')
    expect(r.hosts[0]!.error).toMatch(/lb1: apt-get update failed: E: Failed to fetch .*InRelease/)
    expect(lb1.log.filter((c) => c.script.includes('apt-get') && c.script.includes(' update'))).toHaveLength(2)
    expect(lb1.journal().some((l) => l.startsWith('apt-get install'))).toBe(false)
  })
})

describe("apt's or dpkg's lock held by another process (apt-daily, unattended-upgrades)", () => {
  const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'])

  test('the index update and the install wait for it, saying who holds it, and the host converges', async () => {
    const {fleet, run} = setUp(inv)
    const web1 = fleet.hosts.web1!
    web1.fail(
      'apt-get',
      'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 65032 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/',
      {once: true},
    )
    web1.fail(
      'apt-get-install',
      'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?',
      {once: true},
    )
    const steps: string[] = []
    const restore = fastTimers()
    try {
      const r = await run(['web1'], true, {onStep: (h, s) => steps.push(`${h}: ${s}`)})
      expect(r.hosts.map((h) => [h.host, h.status, h.error])).toEqual([['web1', 'changed', undefined]])
    } finally {
      restore()
    }
    expect(steps).toContain('web1: waiting for /var/lib/apt/lists/lock: held by process 65032 (apt-get)')
    expect(steps).toContain('web1: waiting for /var/lib/dpkg/lock-frontend: held by process 4242 (unattended-upgr)')
    // Waiting is not the update's own retry: one update that failed on the lock, one that ran.
    expect(web1.journal().filter((l) => l === 'apt-get update')).toHaveLength(1)
    expect(web1.journal().filter((l) => l.startsWith('apt-get install'))).toHaveLength(1)
  })

  test('a lock held past the wait fails the host, naming the lock and its holder, with nothing installed', async () => {
    const {fleet} = setUp(inv)
    const lb1 = fleet.hosts.lb1!
    const runner = await fleet.transport.open(inv.hosts.find((h) => h.name === 'lb1')!)
    lb1.fail('apt-get', 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 77 (apt-get)')
    const steps: string[] = []
    const attempt = whileAptLocked(() => runner.run('apt-get -q update 2>&1', {check: false}), {
      host: 'lb1',
      step: (s) => steps.push(s),
      // Long enough for several rounds however loaded the machine (a round of the fake host takes milliseconds).
      waitS: 1.5,
      everyMs: 10,
    })
    await expect(attempt).rejects.toThrow(
      /^lb1: \/var\/lib\/apt\/lists\/lock still held by process 77 \(apt-get\) after [12] s of waiting .*no package was changed/,
    )
    expect(steps.length).toBeGreaterThan(1)
    expect(lb1.journal().some((l) => l.startsWith('apt-get'))).toBe(false)
  })

  test('any other failure is returned at once, not waited on', async () => {
    let calls = 0
    const res = await whileAptLocked(
      async () => {
        calls++
        return {code: 100, stdout: 'E: Unable to locate package nginxx', stderr: ''}
      },
      {host: 'web1', step: () => {}},
    )
    expect([res.code, calls]).toEqual([100, 1])
  })
})

describe('aptLockHeld: the lock and its holder from what apt and dpkg print', () => {
  test.each([
    [
      'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 65032 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/',
      {lock: '/var/lib/apt/lists/lock', holder: 'process 65032 (apt-get)'},
    ],
    [
      'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)',
      {lock: '/var/lib/dpkg/lock-frontend', holder: 'process 4242 (unattended-upgr)'},
    ],
    [
      'E: Could not get lock /var/cache/apt/archives/lock - open (11: Resource temporarily unavailable)',
      {lock: '/var/cache/apt/archives/lock', holder: 'another process'},
    ],
    [
      'dpkg: error: dpkg frontend lock was locked by another process with pid 1570\nNote: removing the lock file is always wrong',
      {lock: '/var/lib/dpkg/lock-frontend', holder: 'process 1570'},
    ],
    ['dpkg: error: dpkg status database is locked by another process', {lock: '/var/lib/dpkg/lock', holder: 'another process'}],
  ])('%s', (output, expected) => {
    expect(aptLockHeld(output)).toEqual(expected)
  })

  test('not a lock: undefined', () => {
    expect(aptLockHeld('E: Unable to fetch some archives, maybe run apt-get update')).toBeUndefined()
    expect(aptLockHeld('E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease')).toBeUndefined()
  })
})
