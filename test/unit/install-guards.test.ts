/*
 * Install guards (files present only during a package transaction) and rkhunter's database built after it
 * (issue 20): the guard script run by a real shell, the hardening plan and verify's reading of the facts.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {guardedInstall} from '../../src/engine/apply.js'
import {startGuard} from '../../src/engine/plan.js'
import {
  describeHardening,
  hardeningFactsScript,
  hardeningUnits,
  parseHardeningFacts,
  planHardening,
} from '../../src/components/hardening/live.js'
import {APT_SHOW_VERSIONS_GUARD} from '../../src/components/hardening/apt-show-versions.js'
import {RKHUNTER_DB, RKHUNTER_GUARD, RKHUNTER_UNIT, rkhunterDbState, rkhunterState} from '../../src/components/hardening/rkhunter.js'
import type {HardeningSpec} from '../../src/components/hardening/spec.js'

const sh = (script: string) => spawnSync('sh', ['-c', script], {encoding: 'utf8'})

describe('guardedInstall', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-guard-'))
  const guard = (name: string) => ({package: 'p', path: join(dir, name), content: `guard ${name}\nline 2\n`})

  test('the guard is there, with its content, while the transaction runs; gone after; its exit status kept', () => {
    const g = guard('a.conf')
    const r = sh(guardedInstall([g], `cat ${g.path}; exit 7`))
    expect(r.stdout).toBe(g.content)
    expect(r.status).toBe(7)
    expect(existsSync(g.path)).toBe(false)
    expect(sh(guardedInstall([g], 'true')).status).toBe(0)
    expect(existsSync(g.path)).toBe(false)
  })

  test("an operator's own file is neither replaced nor removed", () => {
    const g = guard('b.conf')
    writeFileSync(g.path, 'mine\n')
    const r = sh(guardedInstall([g], `cat ${g.path}`))
    expect(r.stdout).toBe('mine\n')
    expect(readFileSync(g.path, 'utf8')).toBe('mine\n')
  })

  test('a hung-up shell (the connection dropped) removes the guard too', () => {
    const g = guard('c.conf')
    const r = sh(guardedInstall([g], `test -f ${g.path} && kill -HUP $$; sleep 5`))
    expect(r.status).toBe(129)
    expect(existsSync(g.path)).toBe(false)
  })

  test('policy-rc.d: only the named services are refused (101), as invoke-rc.d and deb-systemd-invoke ask; it is executable while there', () => {
    const g = {...startGuard('mariadb-server', ['nginx', 'mariadb', 'foobar-lynis.timer']), path: join(dir, 'policy-rc.d')}
    const r = sh(
      guardedInstall(
        [g],
        [
          `test -x ${g.path} && echo executable`,
          ...['mariadb start', '--quiet mariadb start', 'mariadb.service start', 'nginx.service restart', 'foobar-lynis.timer start'].map(
            (a) => `${g.path} ${a}; echo "$?"`,
          ),
          ...['ssh.service restart', 'nginx-extra start', '--quiet cron start', 'mariadbx start'].map((a) => `${g.path} ${a}; echo "$?"`),
        ].join('\n'),
      ),
    )
    expect(r.stdout.trim().split('\n')).toEqual(['executable', '101', '101', '101', '101', '101', '0', '0', '0', '0'])
    expect(existsSync(g.path)).toBe(false)
    expect(() => startGuard('p', ['ok', 'bad;name'])).toThrow(/service name not allowed in policy-rc.d: bad;name/)
  })

  test("apt-show-versions' guard skips only the postinst's cache build (-i) and passes every other call on", () => {
    expect(APT_SHOW_VERSIONS_GUARD.path).toBe('/usr/sbin/apt-show-versions')
    const shim = join(dir, 'asv')
    writeFileSync(shim, APT_SHOW_VERSIONS_GUARD.content.replace('/usr/bin/apt-show-versions', 'echo real:'), {mode: 0o755})
    expect(sh(`${shim} -i; echo "rc=$?"`).stdout).toBe('rc=0\n')
    expect(sh(`${shim} -u`).stdout).toBe('real: -u\n')
    expect(sh(`${shim} -i -v`).stdout).toBe('real: -i -v\n')
    expect(sh(`${shim}`).stdout).toBe('real:\n')
  })

  test('no guards: the command as it was; a path with shell characters is refused', () => {
    expect(guardedInstall([], 'apt-get install x')).toBe('apt-get install x')
    expect(() => guardedInstall([{package: 'p', path: '/etc/x;rm -rf /', content: ''}], 'true')).toThrow(/not allowed/)
  })

  test("rkhunter's guard satisfies rkhunter's own test for skipping the build (scripts/rkhupd.sh)", () => {
    writeFileSync(join(dir, 'rkhunter.conf.local'), RKHUNTER_GUARD.content)
    const rkhupd = `grep -qsE '^DISABLE_TESTS=.*(hashes.*attributes|attributes.*hashes|properties)' ${dir}/rkhunter.conf.local && echo skip`
    expect(sh(rkhupd).stdout).toBe('skip\n')
  })
})

describe("rkhunter's file properties database after the transaction", () => {
  const spec: HardeningSpec = {sysctl: {}, modes: [], disable: [], hostOnly: [], skipped: {}, rkhunter: true}
  const plan = (lines: string[]) => planHardening(spec, parseHardeningFacts(lines), 'none', undefined)

  test('missing and not being built: the plan starts the unit; being built or built: nothing', () => {
    const missing = plan(['rkhunter missing', `unit ${RKHUNTER_UNIT} static inactive`])
    expect(missing).toEqual([{kind: 'rkhunter', unit: RKHUNTER_UNIT}])
    expect(describeHardening(missing[0]!)).toBe(`build rkhunter's file properties database in the background (${RKHUNTER_UNIT})`)
    expect(plan(['rkhunter missing', `unit ${RKHUNTER_UNIT} static activating`])).toEqual([])
    expect(plan(['rkhunter built', `unit ${RKHUNTER_UNIT} static inactive`])).toEqual([])
    // Not installed (a plan before the packages): nothing yet.
    expect(plan([`unit ${RKHUNTER_UNIT} none inactive`])).toEqual([])
    expect(planHardening({...spec, rkhunter: false}, parseHardeningFacts(['rkhunter missing']), 'none', undefined)).toEqual([])
  })

  test("verify's reading: built, building, missing, or no rkhunter", () => {
    expect(rkhunterDbState('built', undefined)).toBe('built')
    expect(rkhunterDbState('missing', {enabled: 'static', active: 'activating'})).toBe('building')
    expect(rkhunterDbState('missing', {enabled: 'static', active: 'failed'})).toBe('missing')
    expect(rkhunterDbState(undefined, undefined)).toBeUndefined()
  })

  // The kernel groups processes by session (autogroup) here as on Debian's kernels: a nice value counts only within
  // a session, and every service is one. The unit's command, with rkhupd.sh swapped for a script that reports its
  // session's nice value and fails (so nothing is recorded as built), run in a session of its own as systemd would.
  test.skipIf(!existsSync('/proc/self/autogroup'))(
    "the build yields to the host's other work: its session is niced, not only its process",
    () => {
      const unit = rkhunterState().files.find((f) => f.path === `/etc/systemd/system/${RKHUNTER_UNIT}`)!.content
      const exec = /^ExecStart=\/bin\/sh -c '(.*)'$/m.exec(unit)![1]!
      const dir = mkdtempSync(join(tmpdir(), 'fb-rkh-'))
      const fake = join(dir, 'rkhupd.sh')
      writeFileSync(fake, '#!/bin/sh\ncat /proc/self/autogroup\nexit 1\n', {mode: 0o755})
      const r = spawnSync('setsid', ['-w', 'sh', '-c', exec.replaceAll('/usr/share/rkhunter/scripts/rkhupd.sh', fake)], {encoding: 'utf8'})
      expect(r.stdout, r.stderr).toMatch(/^\/autogroup-\d+ nice 19$/m)
      expect(r.status).toBe(1)
      // The session of the test itself is left as it was.
      expect(readFileSync('/proc/self/autogroup', 'utf8')).not.toMatch(/nice 19/)
    },
  )

  test('the facts line, run by a shell against files', () => {
    const script = hardeningFactsScript(spec)
    expect(hardeningUnits(spec)).toContain(RKHUNTER_UNIT)
    // Only the rkhunter line's paths differ between cases: swap them for a temporary folder's.
    const dir = mkdtempSync(join(tmpdir(), 'fb-rkh-'))
    const db = join(dir, 'rkhunter.dat')
    const bin = join(dir, 'rkhunter')
    const local = script.replaceAll(RKHUNTER_DB, db).replaceAll('/usr/bin/rkhunter', bin).replaceAll('/var/lib/foobar/', `${dir}/`)
    expect(sh(local).stdout).toBe('')
    writeFileSync(bin, '#!/bin/sh\n', {mode: 0o755})
    expect(sh(local).stdout).toBe('rkhunter missing\n')
    writeFileSync(db, '')
    expect(sh(local).stdout).toBe('rkhunter built\n')
  })
})
