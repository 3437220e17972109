/*
 * A first converge's services (issue 20): those that were not running start one after the other in one round trip,
 * in component order, and are health-gated together, one round trip a probe round for all of them; one that does
 * not come up healthy fails the host as before, naming it, with the previous files back and every started service
 * restarted on them.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {PROBE_LINE, bringUpAllScript, probeAllScript, readBringUpAll, readProbeAll} from '../../src/engine/apply.js'
import {runPlan} from '../../src/engine/run.js'
import {FAST_HEALTH, type FakeFleet, TEST_MATERIAL, fakeFleet, testInventory} from './support/fake-host.js'

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))

const inv = testInventory(['web1 10.77.0.12 web'])

async function firstConverge(setUp: (f: FakeFleet) => void = () => {}, health = FAST_HEALTH) {
  const fleet = fakeFleet(inv)
  fleets.push(fleet)
  setUp(fleet)
  const steps: string[] = []
  const report = await runPlan(STACK, inv, inv.hosts, {
    transport: fleet.transport,
    apply: true,
    concurrency: 1,
    material: TEST_MATERIAL,
    health,
    onStep: (_, s) => steps.push(s),
  })
  return {web1: fleet.hosts.web1!, result: report.hosts[0]!, steps}
}

describe("a first converge's services start together", () => {
  test('one round trip starts them in component order; they are gated together, a round trip a probe round', async () => {
    // Time enough for two passes (FAST_HEALTH's 80 ms are less than a round of the fake's probes).
    const {web1, result, steps} = await firstConverge(() => {}, {...FAST_HEALTH, timeoutMs: 20_000})
    expect([result.status, result.error]).toEqual(['changed', undefined])
    const starts = web1.log.filter((c) => c.script.includes('@@was-of '))
    expect(starts).toHaveLength(1)
    const names = [...readBringUpAll(starts[0]!.result!).keys()]
    console.log(`web1: ${names.length} services started in one round trip: ${names.join(', ')}`)
    // The app before nginx, whose health check asks it.
    expect(names.indexOf('foobar-app')).toBeGreaterThanOrEqual(0)
    expect(names.indexOf('foobar-app')).toBeLessThan(names.indexOf('nginx'))
    expect(steps).toContain(`starting ${names.join(', ')}`)
    for (const n of names) expect(web1.unit(n).active).toBe('active')
    // Healthy twice in a row, a probe interval apart: two rounds, each one round trip for all of them.
    const rounds = web1.log.filter((c) => c.script.includes('@@probe-of '))
    expect(rounds).toHaveLength(2)
    expect(web1.log.filter((c) => c.script.startsWith('fb_state=') || c.script.startsWith('fb_was='))).toHaveLength(0)
  })

  test('one of them unhealthy: the host fails naming it, its files go back, the services started are restarted on them', async () => {
    const {web1, result} = await firstConverge((fleet) =>
      // nginx answers its health check with an error every time; the others are healthy.
      fleet.hosts.web1!.on(
        (c) => c.script.includes('@@probe-of '),
        (c) => ({
          stdout: [...c.script.matchAll(/^echo '@@probe-of (\S+)'$/gm)]
            .map(
              ([, n]) =>
                `@@probe-of ${n}\n${PROBE_LINE}active\n${n === 'nginx' ? 'curl: (22) 502 Bad Gateway\n@@probe-rc 22' : '@@probe-rc 0'}\n`,
            )
            .join(''),
        }),
      ),
    )
    expect(result.status).toBe('failed')
    expect(result.error).toMatch(
      /^web1: nginx unhealthy after the change \(health check failed: curl: \(22\) 502 Bad Gateway\); previous config restored$/,
    )
    // A first converge: the previous state had no site of foobar's.
    expect(web1.exists(NGINX_SITE)).toBe(false)
    const restarts = web1.log.filter((c) => /^systemctl restart /.test(c.script)).map((c) => c.script.split(' ')[2])
    expect(restarts).toContain('nginx')
    expect(restarts).toContain('foobar-app')
  })
})

describe('the scripts', () => {
  test('bringUpAllScript reports each service in order; readBringUpAll reads what was active', () => {
    const script = bringUpAllScript([
      {name: 'a', enable: true},
      {name: 'b', enable: false},
    ])
    expect(script.indexOf('systemctl start a')).toBeGreaterThan(0)
    expect(script.indexOf('systemctl start a')).toBeLessThan(script.indexOf('systemctl start b'))
    expect(script).toContain('systemctl enable --no-reload a')
    expect(script).not.toContain('enable --no-reload b')
    expect(readBringUpAll({code: 0, stdout: '@@was-of a inactive\n@@was-of b active\n', stderr: ''})).toEqual(
      new Map([
        ['a', {wasActive: false}],
        ['b', {wasActive: true}],
      ]),
    )
  })

  test('readProbeAll: state, health check result and output per service; a missing part is absent', () => {
    const script = probeAllScript([{name: 'a', health: 'curl -fsS http://127.0.0.1/'}, {name: 'b'}])
    expect(script).toContain("echo '@@probe-of a'")
    const out = `@@probe-of a\n${PROBE_LINE}active\ncurl: failed\n@@probe-rc 7\n@@probe-of b\n${PROBE_LINE}activating\n@@probe-rc 0\n`
    expect(readProbeAll({code: 0, stdout: out, stderr: ''})).toEqual(
      new Map([
        ['a', {state: 'active', check: {code: 7, stdout: 'curl: failed\n', stderr: ''}}],
        ['b', {state: 'activating'}],
      ]),
    )
    expect(readProbeAll({code: 255, stdout: `@@probe-of a\n${PROBE_LINE}active\n`, stderr: ''}).size).toBe(0)
  })
})

describe('probeAllScript on a shell', () => {
  test("the probes run at once, each service's output, errors and status apart, in the order given", () => {
    const dir = mkdtempSync(join(tmpdir(), 'foobar-probes-'))
    // systemctl: b has failed, the others are active.
    writeFileSync(join(dir, 'systemctl'), '#!/bin/sh\n[ "$2" = b ] && { echo failed; exit 3; }\necho active\n', {mode: 0o755})
    const script = probeAllScript([
      // a passes only once c's probe has run: one after the other, a would wait for c and fail.
      {name: 'a', health: `echo out-a; echo err-a >&2; for i in $(seq 50); do [ -e ${dir}/c-ran ] && exit 0; sleep 0.1; done; exit 9`},
      {name: 'b', health: 'echo never'},
      {name: 'c', health: `touch ${dir}/c-ran; echo out-c; exit 4`},
    ])
    const r = spawnSync('/bin/sh', ['-c', script], {encoding: 'utf8', env: {...process.env, PATH: `${dir}:${process.env.PATH}`}})
    expect(readProbeAll({code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr})).toEqual(
      new Map([
        ['a', {state: 'active', check: {code: 0, stdout: 'out-a\nerr-a\n', stderr: ''}}],
        ['b', {state: 'failed'}],
        ['c', {state: 'active', check: {code: 4, stdout: 'out-c\n', stderr: ''}}],
      ]),
    )
    // Its temp directory is gone.
    expect(r.stdout).not.toMatch(/tmp\./)
  })
})
