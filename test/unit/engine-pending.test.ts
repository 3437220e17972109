/*
 * Pending reloads across an interrupted run (the lost-handler problem), through the fake hosts: a run cut off after
 * it changed a file leaves the reload recorded on the host, and the next run does it even though the file is
 * already as it should be.
 */
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {SSHD_DROPIN, SSHD_GUARDED} from '../../src/components/hardening/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {PENDING_FILE} from '../../src/engine/facts.js'
import {type RunOptions, runPlan} from '../../src/engine/run.js'
import {type Command, FAST_HEALTH, type FakeFleet, TEST_MATERIAL, fakeFleet, testInventory} from './support/fake-host.js'

const APP = '/opt/foobar-app/app.py'
const PENDING = 'pending from an interrupted run'
const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'], {lean: true})
const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))
let template: Promise<FakeFleet> | undefined

/** A copy of a provisioned web1, and a plan/provision of it. */
async function converged() {
  template ??= (async () => {
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    const r = await runPlan(STACK, inv, [inv.hosts[1]!], options(fleet, true))
    expect(r.hosts[0]!.status).toBe('changed')
    return fleet
  })()
  const fleet = (await template).clone()
  fleets.push(fleet)
  const run = async (apply: boolean) => (await runPlan(STACK, inv, [inv.hosts[1]!], options(fleet, apply))).hosts[0]!
  return {web1: fleet.hosts.web1!, run}
}

const options = (fleet: FakeFleet, apply: boolean): RunOptions => ({
  transport: fleet.transport,
  apply,
  concurrency: 1,
  material: TEST_MATERIAL,
  health: FAST_HEALTH,
})
/** The engine's atomic write of `path` (writeFileScript). */
const writes = (path: string) => (c: Command) =>
  c.script.startsWith('set -e\numask 022;') && c.script.split('\n').some((l) => /^mv -fT? \S+ (\S+)$/.exec(l)?.[1] === path)

describe('a run cut off after it wrote a file', () => {
  test('the reloads are recorded on the host as a set, the next runs do them, and the record is gone after a run that finishes', async () => {
    const {web1, run} = await converged()
    const site = web1.file(NGINX_SITE)!
    const app = web1.file(APP)!
    web1.put(APP, `${app}# patched by hand\n`)
    web1.put(NGINX_SITE, 'server {\n    # edited by hand\n}\n')

    // 1. The connection drops right after the site was written (the app's files came first).
    web1.dropAfter(writes(NGINX_SITE))
    const j0 = web1.journal().length
    const first = await run(true)
    expect(first).toMatchObject({host: 'web1', status: 'failed', error: 'web1: connection lost (read ECONNRESET)'})
    expect(web1.file(NGINX_SITE)).toBe(site)
    expect(web1.file(APP)).toBe(app)
    expect(web1.file(PENDING_FILE)).toBe('foobar-app\nnginx\n')
    // Nothing was restarted or reloaded before the connection dropped.
    expect(
      web1
        .journal()
        .slice(j0)
        .filter((l) => l.startsWith('systemctl')),
    ).toEqual([])

    // 2. The files are right now, but the plan still restarts the app and reloads nginx.
    const plan = await run(false)
    expect(plan.status).toBe('pending')
    expect(plan.changes).toEqual([
      {kind: 'reload', name: 'foobar-app', how: 'restart', reason: PENDING, component: 'app'},
      {kind: 'reload', name: 'nginx', how: 'reload', reason: PENDING, component: 'nginx'},
    ])

    // 3. Cut off again, after the app's restart: the record is still a set (no duplicates), nginx still pending.
    web1.dropAfter(/^systemctl restart foobar-app$/)
    const second = await run(true)
    expect(second.status).toBe('failed')
    expect(web1.file(PENDING_FILE)).toBe('foobar-app\nnginx\n')

    // 4. A run that gets through: both done, the record removed, nothing left to do.
    const before = web1.journal().length
    expect(await run(true)).toMatchObject({status: 'changed'})
    expect(
      web1
        .journal()
        .slice(before)
        .filter((l) => l.startsWith('systemctl')),
    ).toEqual(['systemctl restart foobar-app', 'systemctl reload nginx'])
    expect(web1.exists(PENDING_FILE)).toBe(false)
    expect(await run(false)).toMatchObject({status: 'unchanged', changes: []})
  })

  test('a guarded step cut off before it ran (sshd) is planned again, and done behind its revert timer', async () => {
    const {web1, run} = await converged()
    const dropIn = web1.file(SSHD_DROPIN)!
    web1.put(SSHD_DROPIN, '# edited by hand\nPermitRootLogin yes\n')
    web1.dropAfter(writes(SSHD_DROPIN))
    expect((await run(true)).status).toBe('failed')
    expect(web1.file(SSHD_DROPIN)).toBe(dropIn)
    expect(web1.file(PENDING_FILE)).toBe(`${SSHD_GUARDED}\n`)

    const plan = await run(false)
    expect(plan.changes).toEqual([
      expect.objectContaining({
        kind: 'live',
        component: 'hardening',
        action: expect.objectContaining({
          kind: 'sshd',
          guarded: true,
          summary: `reload ssh, confirmed by a fresh SSH connection (${PENDING})`,
        }),
      }),
    ])

    const before = web1.journal().length
    expect(await run(true)).toMatchObject({status: 'changed'})
    expect(web1.journal().slice(before)).toEqual([
      expect.stringMatching(/^systemd-run foobar-sshd-revert in 90s: \/bin\/sh \/var\/lib\/foobar\/sshd\/revert\.sh$/),
      'sshd -t',
      'systemctl reload ssh',
      'systemctl stop foobar-sshd-revert.timer',
    ])
    expect(web1.exists(PENDING_FILE)).toBe(false)
    expect(await run(false)).toMatchObject({status: 'unchanged'})
  })
})
