/*
 * Unit states in two systemctl calls (engine/units.ts): the lines must be those of the per-unit form, run for real
 * with /bin/sh against a systemctl that behaves as systemd 252's does (one state per unit; is-enabled stops at the
 * first unit it does not know).
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {hardeningFactsScript} from '../../src/components/hardening/live.js'
import {SYSCTL} from '../../src/components/hardening/sysctl.js'
import {type UnitLine, unitLineSolo, unitLinesScript} from '../../src/engine/units.js'
import {shq} from '../../src/util/shell.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-units-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

const FAKE_SYSTEMCTL = `#!/bin/sh
verb=$1; shift
echo "$verb $*" >> "$FAKE_LOG"
rc=1; [ "$verb" = is-enabled ] && rc=4
for u in "$@"; do
  case $u in *.*) ;; *) u=$u.service ;; esac
  st=
  for kv in $FAKE_UNITS; do [ "\${kv%%=*}" = "$u" ] && st=\${kv#*=}; done
  if [ "$verb" = is-enabled ]; then
    [ -n "$st" ] || { echo "Failed to get unit file state for $u: No such file or directory" >&2; exit 1; }
    echo "\${st%/*}"
    case \${st%/*} in enabled|enabled-runtime|static|alias|indirect|generated) rc=0 ;; esac
  else
    a=\${st#*/}; [ -n "$st" ] || a=inactive
    echo "$a"; [ "$a" = active ] && rc=0
  fi
done
exit $rc
`
const bin = join(TMP, 'bin')
mkdirSync(bin)
writeFileSync(join(bin, 'systemctl'), FAKE_SYSTEMCTL)
chmodSync(join(bin, 'systemctl'), 0o755)

const UNITS =
  'apt-daily.timer=masked/inactive apt-daily-upgrade.timer=enabled/active avahi-daemon.socket=disabled/inactive cups.service=static/active foobar-upgrade-boot.service=indirect/inactive getty@tty1.service=enabled/active'
/** The unit files of the units the stand-in systemctl knows (getty@tty1 from its template), in a directory of the test's. */
const UNIT_DIR = join(TMP, 'units')
mkdirSync(UNIT_DIR)
for (const f of [
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'avahi-daemon.socket',
  'cups.service',
  'foobar-upgrade-boot.service',
  'getty@.service',
])
  writeFileSync(join(UNIT_DIR, f), '[Unit]\n')
const script = (units: UnitLine[], fallback: 'empty' | 'none') => unitLinesScript(units, fallback, [UNIT_DIR])
function run(script: string, units = UNITS) {
  const log = join(TMP, `log-${Math.random().toString(36).slice(2)}`)
  writeFileSync(log, '')
  const stdout = execFileSync('/bin/sh', ['-c', script], {
    encoding: 'utf8',
    env: {PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, LC_ALL: 'C', FAKE_UNITS: units, FAKE_LOG: log},
  })
  return {stdout, calls: readFileSync(log, 'utf8').split('\n').filter(Boolean)}
}

describe('unitLinesScript', () => {
  const units: UnitLine[] = [
    'apt-daily.timer',
    'nope.service',
    'apt-daily-upgrade.timer',
    'avahi-daemon.socket',
    'cups',
    'gone',
    'foobar-upgrade-boot.service',
    'getty@tty1.service',
    'getty@tty2.service',
  ].map((unit) => ({unit, prefix: `unit ${unit}`}))
  for (const fallback of ['none', 'empty'] as const) {
    test(`the per-unit lines, byte for byte (${fallback === 'none' ? '|| echo none: a failing state gets a "none" line' : '|| true'})`, () => {
      const old = run(units.map((u) => unitLineSolo(u, fallback)).join('\n'))
      const now = run(script(units, fallback))
      expect(now.stdout).toBe(old.stdout)
      expect(old.stdout.split('\n').length).toBeGreaterThan(units.length)
      // One call each: the units without a unit file (nope, gone) are not asked.
      expect(now.calls.filter((c) => c.startsWith('is-active'))).toHaveLength(1)
      expect(now.calls.filter((c) => c.startsWith('is-enabled'))).toEqual([
        'is-enabled apt-daily.timer apt-daily-upgrade.timer avahi-daemon.socket cups foobar-upgrade-boot.service getty@tty1.service getty@tty2.service',
      ])
    })
  }

  test('a unit file that systemctl does not know after all: the same lines (asked again after it)', () => {
    writeFileSync(join(UNIT_DIR, 'stale.service'), '[Unit]\n')
    try {
      const some = [...units.slice(0, 2), {unit: 'stale', prefix: 'unit stale'}, ...units.slice(2)]
      const old = run(some.map((u) => unitLineSolo(u, 'none')).join('\n'))
      const now = run(script(some, 'none'))
      expect(now.stdout).toBe(old.stdout)
      expect(now.calls.filter((c) => c.startsWith('is-enabled'))).toHaveLength(2)
    } finally {
      rmSync(join(UNIT_DIR, 'stale.service'))
    }
  })

  test("the host's unit directories by default, generators' output included", () => {
    const s = unitLinesScript(units, 'none')
    for (const d of ['/etc/systemd/system', '/lib/systemd/system', '/run/systemd/generator']) expect(s).toContain(shq(d))
  })

  test('no systemd (everything fails): the same lines', () => {
    expect(run(script(units, 'none'), '').stdout).toBe(run(units.map((u) => unitLineSolo(u, 'none')).join('\n'), '').stdout)
  })

  test('a name systemctl would refuse in a batch (a template, odd characters) is asked alone, quoted', () => {
    const odd: UnitLine[] = [
      {unit: 'serial-getty@.service', prefix: 'unit serial-getty@.service'},
      {unit: 'a b', prefix: 'unit a b'},
      {unit: 'cups', prefix: 'unit cups'},
      {unit: 'getty@tty1.service', prefix: 'unit getty@tty1.service'},
    ]
    const s = script(odd, 'empty')
    expect(s).toContain(`systemctl is-enabled ${shq('serial-getty@.service')} `)
    expect(s).toContain(`systemctl is-enabled 'a b' `)
    expect(s).toContain(`fb_K="$fb_K cups"`)
    expect(s).toContain('fb_has getty@tty1.service || fb_has getty@.service')
    expect(run(s).stdout).toBe(run(odd.map((u) => unitLineSolo(u, 'empty')).join('\n')).stdout)
  })
})

describe('hardening facts: the sysctl keys read by the shell give what sysctl -n gave', () => {
  test('every key of the spec, and one that does not exist', () => {
    const keys = [...Object.keys(SYSCTL), 'kernel.no_such_key_xyz']
    const script = hardeningFactsScript({
      sysctl: Object.fromEntries(keys.map((k) => [k, '1'])),
      modes: [],
      disable: [],
      hostOnly: [],
      skipped: {},
      rkhunter: false,
    })
    expect(script).toContain('read -r fb_v')
    const old = keys.map((k) => `echo "sysctl ${k} $(sysctl -n ${shq(k)} 2>/dev/null || echo -)"`).join('\n')
    const a = execFileSync('/bin/sh', ['-c', old], {encoding: 'utf8'})
    const b = execFileSync('/bin/sh', ['-c', script], {encoding: 'utf8'})
    expect(b).toBe(a)
    expect(b).toContain('sysctl kernel.no_such_key_xyz -\n')
  })
})
