/*
 * Atomic writes, the daemons' checkers and the health gate, through the fake hosts: a change that a checker or a
 * health check rejects leaves the host serving with its previous configuration, no temp file behind, and an error
 * that names the host and what failed.
 */
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {HAPROXY_CFG} from '../../src/components/haproxy/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {TLS_PATHS} from '../../src/components/tls/profile.js'
import {LAST_APPLY, PENDING_FILE} from '../../src/engine/facts.js'
import {type RunOptions, runPlan} from '../../src/engine/run.js'
import {FAST_HEALTH, type FakeFleet, type FakeHost, TEST_MATERIAL, failingCheck, fakeFleet, testInventory} from './support/fake-host.js'

const APP = '/opt/foobar-app/app.py'
const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))

const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'], {lean: true})
const options = (fleet: FakeFleet, apply: boolean): RunOptions => ({
  transport: fleet.transport,
  apply,
  concurrency: 2,
  material: TEST_MATERIAL,
  health: FAST_HEALTH,
})
/** lb1 and web1 provisioned once; each test gets a copy of them. */
let template: Promise<FakeFleet> | undefined

async function converged(name: 'lb1' | 'web1') {
  template ??= (async () => {
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    const r = await runPlan(STACK, inv, inv.hosts, options(fleet, true))
    expect(r.hosts.map((h) => h.status)).toEqual(['changed', 'changed'])
    return fleet
  })()
  const fleet = (await template).clone()
  fleets.push(fleet)
  const run = async (apply: boolean, extra: Partial<RunOptions> = {}) =>
    (
      await runPlan(
        STACK,
        inv,
        inv.hosts.filter((h) => h.name === name),
        {...options(fleet, apply), ...extra},
      )
    ).hosts[0]!
  return {host: fleet.hosts[name]!, run}
}

function strayTempFiles(host: FakeHost): string[] {
  return (readdirSync(host.root, {recursive: true}) as string[]).filter((p) => /\.foobar-[0-9a-f]{12}$/.test(p)).map((p) => join('/', p))
}

/** Journal lines added by `fn`. */
async function journalOf(host: FakeHost, fn: () => Promise<unknown>): Promise<string[]> {
  const before = host.journal().length
  await fn()
  return host.journal().slice(before)
}

describe('a checker that rejects the candidate file (haproxy -c)', () => {
  test('the old file stays, no temp file is left, files written before it in the run are put back, nothing is reloaded', async () => {
    const {host: lb1, run} = await converged('lb1')
    const bundle = lb1.file(TLS_PATHS.haproxyBundle)
    expect(bundle).toBe(TEST_MATERIAL.siteChain + TEST_MATERIAL.siteKey)
    // A renewed certificate and a config someone edited by hand; this haproxy rejects the new config.
    const edited = 'global\n    # edited by hand\n'
    lb1.put(HAPROXY_CFG, edited)
    lb1.fail('haproxy', "[ALERT]    (4242) : config : parsing [/etc/haproxy/haproxy.cfg:60] : unknown keyword 'bogus' in 'backend' section")
    const renewed = {...TEST_MATERIAL, siteChain: '-----BEGIN CERTIFICATE-----\nRENEWED LEAF\n-----END CERTIFICATE-----\n'}

    let r: Awaited<ReturnType<typeof run>> | undefined
    const journal = await journalOf(lb1, async () => (r = await run(true, {material: renewed})))
    expect(r).toMatchObject({host: 'lb1', status: 'failed'})
    expect(r!.error).toMatch(/^lb1: /)
    expect(r!.error).toContain("unknown keyword 'bogus'")
    expect(r!.error).toContain('validation failed: /etc/haproxy/haproxy.cfg (previous file kept)')
    expect(lb1.file(HAPROXY_CFG)).toBe(edited)
    // The bundle was written first (haproxy -c reads it): it is back as it was.
    expect(lb1.file(TLS_PATHS.haproxyBundle)).toBe(bundle)
    expect(strayTempFiles(lb1)).toEqual([])
    expect(journal.filter((l) => l.startsWith('systemctl'))).toEqual([])
    expect(lb1.unit('haproxy').active).toBe('active')
    // Nothing changed, so no reload is owed: the record of this run's reloads is gone with the restore.
    expect(lb1.exists(PENDING_FILE)).toBe(false)
  })
})

describe('a checker that reads the whole config (nginx -t)', () => {
  const emerg =
    'nginx: [emerg] unknown directive "bogus" in /etc/nginx/conf.d/foobar.conf:3\nnginx: configuration file /etc/nginx/nginx.conf test failed'

  test('the previous file is put back and nginx keeps running on it', async () => {
    const {host: web1, run} = await converged('web1')
    const edited = 'server {\n    # edited by hand\n}\n'
    web1.put(NGINX_SITE, edited)
    web1.fail('nginx', emerg)
    let r: Awaited<ReturnType<typeof run>> | undefined
    const journal = await journalOf(web1, async () => (r = await run(true)))
    expect(r).toMatchObject({host: 'web1', status: 'failed'})
    expect(r!.error).toMatch(/^web1: /)
    expect(r!.error).toContain('nginx: [emerg] unknown directive "bogus"')
    expect(r!.error).toContain('validation failed: /etc/nginx/conf.d/foobar.conf (previous file restored)')
    expect(web1.file(NGINX_SITE)).toBe(edited)
    expect(strayTempFiles(web1)).toEqual([])
    expect(journal).toEqual(['nginx -t -q'])
  })

  test('a foreign file that breaks the config: the error names the file the checker rejected, not ours', async () => {
    const {host: web1, run} = await converged('web1')
    web1.put(NGINX_SITE, 'server {\n    # edited by hand\n}\n')
    web1.fail(
      'nginx',
      'nginx: [emerg] unknown directive "oops" in /etc/nginx/conf.d/zz-broken.conf:1\nnginx: configuration file /etc/nginx/nginx.conf test failed',
    )
    const r = await run(true)
    expect(r.status).toBe('failed')
    expect(r.error).toContain('validation failed: /etc/nginx/conf.d/foobar.conf (previous file restored)')
    expect(r.error).toMatch(/\(the checker rejected \/etc\/nginx\/conf\.d\/zz-broken\.conf:1, not \/etc\/nginx\/conf\.d\/foobar\.conf\)$/)
  })

  test('a new file that fails is removed again (no half-configured site left in place)', async () => {
    const {host: web1, run} = await converged('web1')
    web1.remove(NGINX_SITE)
    web1.fail('nginx', emerg)
    const r = await run(true)
    expect(r.status).toBe('failed')
    expect(r.error).toContain('validation failed: /etc/nginx/conf.d/foobar.conf (previous file restored)')
    expect(web1.exists(NGINX_SITE)).toBe(false)
    expect(strayTempFiles(web1)).toEqual([])
    // Fixed (a checker that passes): the next run writes it.
    web1.heal('nginx')
    expect(await run(true)).toMatchObject({status: 'changed'})
    expect(web1.file(NGINX_SITE)).toContain('server_name www.foobar.test')
  })
})

describe('a directory where a file belongs', () => {
  // Found by this test: a plain `mv -f` moved the new file *into* the directory and exited 0, so the run reported
  // the file written while the daemon never saw it. writeFileScript uses `mv -fT`, which fails and names the path.
  test('is not reported as written: replaced, or a failure that names it; no file is moved inside it', async () => {
    const {host: web1, run} = await converged('web1')
    web1.remove(NGINX_SITE)
    web1.mkdir(NGINX_SITE)
    const r = await run(true)
    expect(web1.ls(NGINX_SITE)).toEqual([])
    if (r.status === 'changed') expect(web1.file(NGINX_SITE)).toContain('server_name www.foobar.test')
    else expect(r).toMatchObject({status: 'failed', error: expect.stringContaining(NGINX_SITE)})
  })
})

describe('the health gate', () => {
  test('a service failing its health check after a reload: every file written in the run is restored and the service reloaded on it', async () => {
    const {host: web1, run} = await converged('web1')
    const app = web1.file(APP)!
    const editedApp = `${app}# patched by hand\n`
    const editedSite = 'server {\n    # edited by hand\n}\n'
    web1.put(APP, editedApp)
    web1.put(NGINX_SITE, editedSite)
    // nginx answers 502 through its new config.
    web1.on(/curl -fsSk -o \/dev\/null --resolve/, (c) => failingCheck(c.script, 'curl: (22) The requested URL returned error: 502\n'))

    let r: Awaited<ReturnType<typeof run>> | undefined
    const journal = await journalOf(web1, async () => (r = await run(true)))
    expect(r).toMatchObject({host: 'web1', status: 'failed'})
    expect(r!.error).toBe(
      'web1: nginx unhealthy after the change (health check failed: curl: (22) The requested URL returned error: 502); previous config restored',
    )
    expect(web1.file(APP)).toBe(editedApp)
    expect(web1.file(NGINX_SITE)).toBe(editedSite)
    expect(strayTempFiles(web1)).toEqual([])
    // The app came up on its new file and nginx with the new site; after the restore both run on the restored files
    // again (issue 15: a rollback reloads every service the run touched, not only the one that failed).
    // Nothing after it ran: no live step, no guarded step.
    expect(journal.filter((l) => /^(systemctl|systemd-run|sysctl|ufw)/.test(l))).toEqual([
      'systemctl restart foobar-app',
      'systemctl reload nginx',
      'systemctl restart foobar-app',
      'systemctl reload nginx',
    ])
    // The host runs its previous configuration: no reload is owed any more (a restored file cancels its reload).
    expect(web1.exists(PENDING_FILE)).toBe(false)
  })

  test("a service that does not start: the error quotes the end of its journal (systemd's cgroup noise left out), so the user sees why", async () => {
    const {host: web1, run} = await converged('web1')
    web1.put(APP, `${web1.file(APP)!}# patched by hand\n`)
    web1.fail('unit-foobar-app')
    web1.command(
      'journalctl',
      `case "$*" in *'-u foobar-app'*) printf 'Starting foobar-app...\\nfoobar-app: address already in use\\nfoobar-app.service: Failed to kill control group /system.slice/foobar-app.service, ignoring: Input/output error\\nfoobar-app.service: Failed with result exit-code.\\n' ;; esac`,
    )
    const r = await run(true)
    expect(r.error).toBe(
      'web1: foobar-app unhealthy after the change (foobar-app is failed; its journal ends:\n    Starting foobar-app...\n    foobar-app: address already in use\n    foobar-app.service: Failed with result exit-code.); previous config restored',
    )
    web1.heal('unit-foobar-app')
  })

  test('a service that does not start: the error says so, its files are restored', async () => {
    const {host: web1, run} = await converged('web1')
    const editedApp = `${web1.file(APP)!}# patched by hand\n`
    web1.put(APP, editedApp)
    web1.fail('unit-foobar-app')
    const r = await run(true)
    expect(r).toMatchObject({
      host: 'web1',
      status: 'failed',
      error: 'web1: foobar-app unhealthy after the change (foobar-app is failed); previous config restored',
    })
    expect(web1.file(APP)).toBe(editedApp)
    // The run changed the host all the same (and put it back): recorded last, after the restore.
    const scripts = web1.log.map((c) => c.script)
    expect(scripts.at(-1)).toMatch(new RegExp(`date \\+%s > ${LAST_APPLY}$`))
    // Healed, the next run converges it.
    web1.heal('unit-foobar-app')
    expect(await run(true)).toMatchObject({status: 'changed'})
    expect(web1.unit('foobar-app').active).toBe('active')
    expect(await run(false)).toMatchObject({status: 'unchanged', changes: []})
  })
})
