/*
 * verify shows what it is doing and keeps the Lynis score honest (issue 20, item 4): which report may be used
 * (a pure decision), that a stale one is never used, a run on the host when needed (its test group as progress),
 * and the progress lines on stderr, through the fake hosts (test/unit/support/fake-host.ts).
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, describe, expect, test} from 'vitest'
import {hardening} from '../../src/components/hardening/index.js'
import {
  LYNIS_LOG,
  LYNIS_LOG_PLUGIN,
  LYNIS_LOG_PLUGIN_NAME,
  LYNIS_PROFILE,
  LYNIS_REPORT,
  LYNIS_UNIT,
  ago,
  lynisProgress,
  lynisReportUse,
  lynisState,
  parseLynisProbe,
} from '../../src/components/hardening/lynis.js'
import {VerifyProgress, hostEnding, runningLine} from '../../src/cli/verify-progress.js'
import {defineStack} from '../../src/engine/desired.js'
import {LAST_APPLY} from '../../src/engine/facts.js'
import {type VerifyEvent, type VerifyOptions, verifyHosts} from '../../src/engine/verify.js'
import {type FakeFleet, type FakeHost, TEST_MATERIAL, fakeFleet, fastTimers, testInventory} from './support/fake-host.js'

const H = 3600
const NOW = 1_700_000_000

describe('which Lynis report verify may use (pure)', () => {
  const fresh = {index: 87, started: NOW - 10 * 60, finished: NOW - 4 * 60}
  const base = {now: NOW, lastApply: NOW - H, report: fresh, maxAgeS: 25 * H, force: false}

  test('a report that started after foobar last changed the host, younger than the limit: used, its age from its end', () => {
    expect(lynisReportUse(base)).toEqual({use: true, ageS: 4 * 60})
  })

  test.each([
    ['--lynis-now', {force: true}, /^--lynis-now$/],
    ['no report', {report: undefined}, /^no report on the host yet$/],
    ['foobar changed the host after the report started', {lastApply: NOW - 5 * 60}, /older than foobar's last change \(5 min ago\)/],
    ['a change in the very second the report started', {lastApply: fresh.started}, /older than foobar's last change/],
    [
      'a run under way when foobar changed the host (started before, ended after)',
      {lastApply: NOW - 7 * 60},
      /older than foobar's last change/,
    ],
    ['the last change is not recorded', {lastApply: undefined}, /not recorded/],
    ['older than the limit', {maxAgeS: 5 * 60}, /is 10 min old \(limit 5 min\)/],
    ['dated after the host clock (a clock set back)', {now: NOW - 8 * 60}, /dated after the host's clock/],
  ])('%s: not used, Lynis runs (%s)', (_name, change, reason) => {
    const d = lynisReportUse({...base, ...change})
    expect(d.use).toBe(false)
    expect(!d.use && d.reason).toMatch(reason)
  })

  test('ages read as people say them', () => {
    expect([ago(40), ago(4 * 60), ago(3 * H), ago(-5)]).toEqual(['40 s', '4 min', '3 h', '0 s'])
  })

  test('the probe: the host clock, the last change, the report stamps, the unit', () => {
    const p = parseLynisProbe(
      `now ${NOW}.25\napplied ${NOW - H}.5\nreport hardening_index=87\nreport foobar_started=${NOW - 600}.1\nreport foobar_finished=${NOW - 240}.9\nunit activating\n`,
    )
    expect(p).toEqual({
      now: NOW + 0.25,
      lastApply: NOW - H + 0.5,
      report: {index: 87, started: NOW - 599.9, finished: NOW - 239.1},
      unit: 'activating',
    })
    // A report without foobar's stamps (Lynis run by hand into that file, or cut short) is no report; no unit, no `unit`.
    expect(parseLynisProbe(`now ${NOW}\nreport hardening_index=87\n`)).toEqual({now: NOW})
    expect(parseLynisProbe(`now ${NOW}\napplied \n`).lastApply).toBeUndefined()
  })

  test("a running Lynis' progress from its log: the test group, the test, how many groups so far", () => {
    const log = [
      'first 2024-07-19 12:08:50 Starting Lynis 3.0.8 with PID 41, build date 2022-05-05',
      'groups 7',
      'group 2024-07-19 12:09:04 Action: Performing tests from category: Kernel',
      'last 2024-07-19 12:09:05 Performing test ID KRNL-5622 (Determine Linux default run level)',
    ].join('\n')
    expect(lynisProgress(log)).toBe('Kernel: KRNL-5622 (test group 7)')
    // A group that has not run a test yet.
    expect(lynisProgress(log.replace(/last .*/, 'last 2024-07-19 12:09:04 Action: Performing tests from category: Kernel'))).toBe(
      'Kernel (test group 7)',
    )
    expect(lynisProgress('first foobar: waiting for the foobar run on this host to end\ngroups 0')).toBe(
      'waiting for the foobar run on the host to end',
    )
    expect(lynisProgress('first 2024-07-19 12:08:50 Starting Lynis 3.0.8 with PID 41\ngroups 0')).toBe('starting')
    expect(lynisProgress('')).toBeUndefined()
  })

  test('the scheduled runs: daily, one at a time, niced; none after every change (verify runs one when it needs it)', () => {
    const {files, services} = lynisState()
    const unit = (s: string) => files.find((f) => f.path === `/etc/systemd/system/${LYNIS_UNIT}.${s}`)?.content
    expect(unit('path')).toBeUndefined()
    expect(unit('timer')).toMatch(/OnCalendar=daily/)
    expect(unit('service')).toMatch(/Type=oneshot[\s\S]*Nice=19[\s\S]*IOSchedulingClass=idle/)
    expect(services.map((s) => s.name)).toEqual([`${LYNIS_UNIT}.timer`])
  })

  test("foobar's Lynis plugin: found and enabled as Lynis looks for plugins, loaded before the Debian plugin", () => {
    const plugin = lynisState().files.find((f) => f.path === LYNIS_LOG_PLUGIN)!
    // Lynis: `find PLUGINDIR -type f -name "plugin_[a-z]*_phase1" | sort`, the name from "# PLUGIN_NAME=", the file
    // plugin_NAME_phase1 sourced when a profile has "plugin=NAME", and only with safe permissions (644 and stricter).
    const name = /^# PLUGIN_NAME=(.*)$/m.exec(plugin.content)?.[1]
    expect(name).toBe(LYNIS_LOG_PLUGIN_NAME)
    expect(LYNIS_LOG_PLUGIN).toBe(`/etc/lynis/plugins/plugin_${name}_phase1`)
    expect(`plugin_${name}_phase1`).toMatch(/^plugin_[a-z]/)
    expect([`plugin_${name}_phase1`, 'plugin_debian_phase1'].sort()[0]).toBe(`plugin_${name}_phase1`)
    expect(LYNIS_PROFILE.split('\n')).toContain(`plugin=${name}`)
    expect(plugin.mode).toBe(0o644)
  })

  test("the plugin's LogText, sourced by a real shell: each line stamped with the last separator's time, no date run", () => {
    const dir = mkdtempSync(join(tmpdir(), 'fb-lynis-'))
    const log = join(dir, 'lynis.log')
    const plugin = lynisState().files.find((f) => f.path === LYNIS_LOG_PLUGIN)!.content
    writeFileSync(join(dir, 'plugin'), plugin)
    // Lynis' own LogTextBreak sets CDATE; with PATH emptied, a `date` the plugin asked for would fail loudly.
    const script = [
      `LOGFILE=${log}; LOGTEXT=1; CDATE='2026-12-04 05:00:00'`,
      `. ${dir}/plugin`,
      'PATH=/nonexistent',
      'LogText "Performing test ID KRNL-5622 (Determine Linux default run level)"',
      'LogText "Result: found runlevel 5"',
      'LOGTEXT=0; LogText "not logged"',
    ].join('\n')
    const r = spawnSync('sh', ['-c', script], {encoding: 'utf8'})
    expect(r.stderr).toBe('')
    expect(readFileSync(log, 'utf8')).toBe(
      '2026-12-04 05:00:00 Performing test ID KRNL-5622 (Determine Linux default run level)\n2026-12-04 05:00:00 Result: found runlevel 5\n',
    )
  })
})

/* ---------------------------------------------------------------------------------------------------------------- */

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))
let restore: (() => void) | undefined
afterEach(() => {
  restore?.()
  restore = undefined
})

/** The hardening component with only its Lynis check (ssh-audit would reach for the network), and key material. */
const STACK = defineStack([
  {name: 'material', appliesTo: () => false, material: () => TEST_MATERIAL},
  {...hardening, after: [], checks: (ctx) => hardening.checks!(ctx).filter((c) => c.name === 'lynis')},
])

/** A stand-in for Lynis: a log with a test group, a pause, a report (index 87). */
const FAKE_LYNIS = `
rep=; log=
while [ $# -gt 0 ]; do case $1 in --report-file) rep=$2; shift ;; --log-file) log=$2; shift ;; esac; shift; done
echo "2024-07-19 12:08:50 Starting Lynis 3.0.8 with PID 41" > "$log"
echo "2024-07-19 12:09:04 Action: Performing tests from category: Kernel" >> "$log"
echo "2024-07-19 12:09:05 Performing test ID KRNL-5622 (Determine Linux default run level)" >> "$log"
sleep 0.4
printf '# Lynis Report\\nhardening_index=87\\n' > "$rep"
echo lynis >> "$FAKE_STATE/lynis-runs"
`

function host(o: {unit: boolean}): {fleet: FakeFleet; web1: FakeHost; runs: () => number} {
  const inv = testInventory(['web1 10.77.0.12 web'], {lean: true})
  const fleet = fakeFleet(inv)
  fleets.push(fleet)
  const web1 = fleet.hosts.web1!
  web1.command('lynis', FAKE_LYNIS)
  if (o.unit) {
    web1.put(`/etc/systemd/system/${LYNIS_UNIT}.service`, '[Service]\n')
    // systemd would run the script: here it runs as foobar's own copy of it would (its paths in the fake root).
    web1.on(`systemctl start ${LYNIS_UNIT}.service`, async (_cmd, h) => {
      const r = await h.run('sh -s', {stdin: lynisState().files[0]!.content, check: false})
      return {code: r.code, stderr: r.stderr}
    })
  }
  const runs = () => (web1.file(`${web1.state}/lynis-runs`, true) ?? '').split('\n').filter(Boolean).length
  return {fleet, web1, runs}
}

const secondsNow = () => Date.now() / 1000

async function verify(fleet: FakeFleet, extra: Partial<VerifyOptions> = {}) {
  const events: VerifyEvent[] = []
  const inv = testInventory(['web1 10.77.0.12 web'], {lean: true})
  const checks = await verifyHosts(STACK, inv, inv.hosts, {
    transport: fleet.transport,
    timeoutMs: 0,
    concurrency: 4,
    onEvent: (e) => events.push(e),
    ...extra,
  })
  return {lynis: checks.find((c) => c.check === 'lynis')!, events}
}

describe('the Lynis check on a host', () => {
  test('a report that started after the last change: read, not run (its age said)', async () => {
    const {fleet, web1, runs} = host({unit: true})
    const t = secondsNow()
    web1.put(LAST_APPLY, `${t - 3600}\n`)
    web1.put(LYNIS_REPORT, `hardening_index=91\nfoobar_started=${t - 600}\nfoobar_finished=${t - 240}\n`)
    const {lynis} = await verify(fleet)
    expect(lynis).toMatchObject({ok: true, detail: 'hardening index 91 (minimum 80; report from 4 min ago)'})
    expect(runs()).toBe(0)
    expect(web1.commands(`systemctl start ${LYNIS_UNIT}`)).toHaveLength(0)
  })

  test('a stale report (foobar changed the host since it started) is never used: Lynis runs now, through the unit', async () => {
    restore = fastTimers()
    const {fleet, web1, runs} = host({unit: true})
    const t = secondsNow()
    web1.put(LYNIS_REPORT, `hardening_index=99\nfoobar_started=${t - 600}\nfoobar_finished=${t - 300}\n`)
    web1.put(LAST_APPLY, `${t - 120}\n`)
    const {lynis, events} = await verify(fleet)
    expect(runs()).toBe(1)
    expect(lynis.ok).toBe(true)
    expect(lynis.detail).toMatch(
      /^hardening index 87 \(minimum 80; ran now in \d+ s: the last report \(10 min ago\) is older than foobar's last change \(2 min ago\)\)$/,
    )
    expect(lynis.detail).not.toMatch(/99/)
    // The new report carries its stamps: the next verify reads it.
    const next = await verify(fleet)
    expect(next.lynis.detail).toMatch(/^hardening index 87 \(minimum 80; report from \d+ s ago\)$/)
    expect(runs()).toBe(1)
    // What it did, as it did it: why it runs, then Lynis' test group from its log.
    const said = events.flatMap((e) => (e.kind === 'progress' && e.check === 'lynis' ? [e.text] : []))
    expect(said[0]).toMatch(/^running now \(the last report .* older than foobar's last change/)
    expect(said).toContain('Kernel: KRNL-5622 (test group 1)')
    expect(web1.file(LYNIS_LOG)).toMatch(/Performing tests from category: Kernel/)
  })

  test('--lynis-now runs it even when the report could be used; no report at all: runs; not set up here: over the connection', async () => {
    restore = fastTimers()
    const {fleet, web1, runs} = host({unit: true})
    const t = secondsNow()
    web1.put(LAST_APPLY, `${t - 3600}\n`)
    web1.put(LYNIS_REPORT, `hardening_index=91\nfoobar_started=${t - 600}\nfoobar_finished=${t - 240}\n`)
    const forced = await verify(fleet, {lynisNow: true})
    expect(forced.lynis.detail).toMatch(/^hardening index 87 \(minimum 80; ran now in \d+ s: --lynis-now\)$/)
    expect(runs()).toBe(1)

    const bare = host({unit: false})
    const first = await verify(bare.fleet)
    expect(first.lynis.detail).toMatch(/ran now in \d+ s: no report on the host yet\)$/)
    expect(bare.runs()).toBe(1)
    expect(bare.web1.commands(`systemctl start ${LYNIS_UNIT}`)).toHaveLength(0)
    // Run over the connection, by the same script (its report stamped): without a recorded change, not reused.
    expect(bare.web1.file(LYNIS_REPORT)).toMatch(/^foobar_started=\d+\.\d+$/m)
    expect((await verify(bare.fleet)).lynis.detail).toMatch(/not recorded\)$/)
  })

  test('the unit cannot run (a container\u2019s cgroup: 219/CGROUP): Lynis runs in the session instead, and says why', async () => {
    restore = fastTimers()
    const {fleet, web1, runs} = host({unit: true})
    web1.on(`systemctl start ${LYNIS_UNIT}.service`, () => ({code: 1, stderr: 'Job for foobar-lynis.service failed.\n'}))
    web1.on(`journalctl -u ${LYNIS_UNIT}.service -n 3 --no-pager -o cat`, () => ({
      code: 0,
      stdout: 'foobar-lynis.service: Main process exited, code=exited, status=219/CGROUP\n',
    }))
    const {lynis, events} = await verify(fleet)
    expect(runs()).toBe(1)
    expect(lynis.ok).toBe(true)
    expect(lynis.detail).toMatch(/^hardening index 87 \(minimum 80; ran now in \d+ s: /)
    const said = events.flatMap((e) => (e.kind === 'progress' && e.check === 'lynis' ? [e.text] : []))
    expect(said).toContain(
      `${LYNIS_UNIT}.service failed (foobar-lynis.service: Main process exited, code=exited, status=219/CGROUP); running Lynis in this session`,
    )
  })

  test('a score under the minimum fails, and is not retried', async () => {
    const {fleet, web1, runs} = host({unit: true})
    const t = secondsNow()
    web1.put(LAST_APPLY, `${t - 3600}\n`)
    web1.put(LYNIS_REPORT, `hardening_index=61\nfoobar_started=${t - 600}\nfoobar_finished=${t - 240}\n`)
    const {lynis, events} = await verify(fleet, {timeoutMs: 600})
    expect(lynis).toMatchObject({ok: false, detail: 'hardening index 61 (minimum 80; report from 4 min ago)'})
    expect(events.filter((e) => e.kind === 'retry' && e.check === 'lynis')).toEqual([])
    expect(runs()).toBe(0)
  })

  test('events: the host and its checks, each check started and done with its time, the host done', async () => {
    const {fleet, web1} = host({unit: true})
    const t = secondsNow()
    web1.put(LAST_APPLY, `${t - 3600}\n`)
    web1.put(LYNIS_REPORT, `hardening_index=91\nfoobar_started=${t - 600}\nfoobar_finished=${t - 240}\n`)
    const {events} = await verify(fleet)
    const started = events.find((e) => e.kind === 'host')
    expect(started).toMatchObject({host: 'web1', checks: expect.arrayContaining(['config', 'lynis'])})
    const checks = (started as {checks: string[]}).checks
    for (const c of checks) {
      const start = events.findIndex((e) => e.kind === 'start' && e.check === c)
      const done = events.findIndex((e) => e.kind === 'done' && e.check === c)
      expect(start, c).toBeGreaterThan(events.indexOf(started!))
      expect(done, c).toBeGreaterThan(start)
      expect((events[done] as {ms: number}).ms).toBeGreaterThanOrEqual(0)
    }
    expect(events.at(-1)).toMatchObject({kind: 'hostDone', host: 'web1', results: expect.any(Array)})
  })
})

/* ---------------------------------------------------------------------------------------------------------------- */

/** Everything written to stderr while `fn` runs. */
async function stderrOf(fn: () => Promise<void>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr)
  let out = ''
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
    return true
  }) as typeof process.stderr.write
  try {
    await fn()
  } finally {
    process.stderr.write = write
  }
  return out
}

describe('progress on stderr', () => {
  test('plain (no terminal): each check with its result and time, Lynis as it runs, the host with its slowest checks', async () => {
    let clock = 0
    const out = await stderrOf(async () => {
      const p = await VerifyProgress.open(['web1', 'lb1'], 'plain', () => clock)
      p.start()
      const r = (check: string, ok: boolean, detail = 'fine') => ({host: 'web1', check, ok, detail})
      p.onEvent({kind: 'host', host: 'web1', checks: ['config', 'lynis']})
      p.onEvent({kind: 'start', host: 'web1', check: 'config'})
      p.onEvent({kind: 'start', host: 'web1', check: 'lynis'})
      clock = 400
      p.onEvent({kind: 'done', host: 'web1', check: 'config', result: r('config', true), ms: 400})
      p.onEvent({kind: 'progress', host: 'web1', check: 'lynis', text: 'running now (no report on the host yet)'})
      clock = 20_000
      p.onEvent({kind: 'progress', host: 'web1', check: 'lynis', text: 'Kernel: KRNL-5622 (test group 7)'})
      // Not every change: one line per 15 s.
      clock = 21_000
      p.onEvent({kind: 'progress', host: 'web1', check: 'lynis', text: 'Memory and Processes (test group 8)'})
      clock = 312_000
      p.onEvent({kind: 'done', host: 'web1', check: 'lynis', result: r('lynis', true, 'hardening index 87'), ms: 312_000})
      p.onEvent({kind: 'hostDone', host: 'web1', results: [r('config', true), r('lynis', true)], ms: 312_000})
      p.onEvent({kind: 'done', host: 'lb1', check: 'ssh', result: {host: 'lb1', check: 'ssh', ok: false, detail: 'refused'}, ms: 30})
      p.onEvent({kind: 'hostDone', host: 'lb1', results: [{host: 'lb1', check: 'ssh', ok: false, detail: 'refused'}], ms: 30})
      await p.close()
    })
    const lines = out.split('\n')
    const at = (s: string) => lines.findIndex((l) => l.includes(s))
    expect(at('web1: 2 checks')).toBeGreaterThan(-1)
    expect(at('web1: config: pass in 0.4 s')).toBeGreaterThan(at('web1: 2 checks'))
    expect(at('web1: lynis: running now (no report on the host yet) (0.4 s)')).toBeGreaterThan(-1)
    expect(at('web1: lynis: Kernel: KRNL-5622 (test group 7) (20 s)')).toBeGreaterThan(-1)
    expect(out).not.toMatch(/Memory and Processes/)
    expect(at('web1: lynis: pass in 312 s')).toBeGreaterThan(at('Kernel'))
    expect(out).toMatch(/web1: 2 passed in 312 s \(slowest: lynis 312 s\)/)
    expect(out).toMatch(/lb1: ssh: FAIL in 0\.0 s: refused/)
    expect(out).toMatch(/✖ lb1 \[FAILED: 0 passed, 1 failed \(ssh\) in 0\.0 s\]/)
  })

  test('silent under --json: nothing at all', async () => {
    const out = await stderrOf(async () => {
      const p = await VerifyProgress.open(['web1'], 'silent')
      p.start()
      p.onEvent({kind: 'host', host: 'web1', checks: ['config']})
      p.onEvent({kind: 'hostDone', host: 'web1', results: [], ms: 1})
      await p.close()
    })
    expect(out).toBe('')
  })

  test("a terminal's line per host: checks done, the longest-running ones with their seconds and progress", () => {
    const running = [
      {check: 'ssh-audit', t0: 40_000},
      {check: 'lynis', t0: 1000, text: 'Kernel: KRNL-5622 (test group 7)'},
      {check: 'service nginx', t0: 44_500},
      {check: 'config', t0: 44_900},
    ]
    expect(runningLine(21, 25, running, 46_000)).toBe(
      '21/25 checks done; running: lynis 45 s (Kernel: KRNL-5622 (test group 7)), ssh-audit 6.0 s, service nginx 1.5 s +1 more',
    )
    expect(runningLine(25, 25, [], 46_000)).toBe('25/25 checks done')
  })

  test("a host's ending: counts, time, its slowest checks of a second or more; the failed checks named", () => {
    const r = (check: string, ok: boolean, skipped = false) => ({host: 'web1', check, ok, detail: '', ...(skipped ? {skipped} : {})})
    const took = [
      {check: 'lynis', ms: 312_000},
      {check: 'config', ms: 300},
      {check: 'ssh-audit', ms: 2100},
    ]
    expect(hostEnding([r('config', true), r('lynis', true), r('usb', true, true)], 313_000, took)).toEqual({
      status: 'done',
      text: '2 passed, 1 skipped in 313 s (slowest: lynis 312 s, ssh-audit 2.1 s)',
    })
    expect(hostEnding([r('config', true), r('lynis', false)], 313_000, took)).toEqual({
      status: 'failed',
      text: '1 passed, 1 failed (lynis) in 313 s (slowest: lynis 312 s, ssh-audit 2.1 s)',
    })
  })
})
