/*
 * One systemd reload for a package transaction (issue 20): the shim run by a real shell in front of a fake systemctl
 * that logs what reached it, with the calls Debian's maintainer scripts make, in their order.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeEach, describe, expect, test} from 'vitest'
import {oneDaemonReload} from '../../src/engine/daemon-reload.js'
import {shq} from '../../src/util/shell.js'

const dir = mkdtempSync(join(tmpdir(), 'fb-reload-'))
const bin = join(dir, 'bin')
const running = join(dir, 'run-systemd-system')
const log = join(dir, 'calls.log')
const tmp = join(dir, 'tmp')
mkdirSync(bin)
mkdirSync(running)
mkdirSync(tmp)
// The "real" systemctl: logs its arguments; `is-active` answers 3 (inactive), as systemd does for a new unit.
writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${log}\ncase " $* " in *" is-active "*) exit 3 ;; esac\nexit 0\n`, {
  mode: 0o755,
})

const sh = (script: string) => spawnSync('/bin/sh', ['-c', script], {encoding: 'utf8', env: {PATH: `${bin}:/usr/bin:/bin`, TMPDIR: tmp}})
const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [])

/** Two packages' postinst, as debhelper writes them, then a package whose postinst starts its timer. */
const POSTINSTS = [
  // deb-systemd-helper enable on a first install: an offline preset
  'systemctl --root=/ --system --preset-mode=enable-only preset a.service',
  'systemctl --system daemon-reload >/dev/null || true',
  'systemctl --root=/ --system --preset-mode=enable-only preset b.service',
  'systemctl --system daemon-reload >/dev/null || true',
  'systemctl --root=/ --system --preset-mode=enable-only preset c.timer',
  'systemctl --system daemon-reload >/dev/null || true',
  // deb-systemd-invoke start c.timer: two queries, then the start
  'systemctl --system is-enabled -- c.timer',
  'systemctl --system --quiet is-active -- c.timer; echo "is-active said $?"',
  'systemctl --quiet --system start c.timer',
  'systemctl --system daemon-reload >/dev/null || true',
].join('\n')

describe('oneDaemonReload', () => {
  beforeEach(() => writeFileSync(log, ''))

  test('the reloads asked one after the other run once, just before the start that needs them, and once at the end', () => {
    // As apt runs dpkg: PATH replaced by its DPkg::Path (where the fake systemctl is not).
    const r = sh(oneDaemonReload((p) => `env PATH=${p} sh -c ${shq(POSTINSTS)}\nexit 7`, {systemdDir: running}))
    expect(r.stdout).toBe('is-active said 3\n')
    expect(r.status).toBe(7)
    expect(calls()).toEqual([
      '--root=/ --system --preset-mode=enable-only preset a.service',
      '--root=/ --system --preset-mode=enable-only preset b.service',
      '--root=/ --system --preset-mode=enable-only preset c.timer',
      '--system is-enabled -- c.timer',
      '--system --quiet is-active -- c.timer',
      // the three reloads asked before it
      'daemon-reload',
      '--quiet --system start c.timer',
      // the last one, due when the transaction ended
      'daemon-reload',
    ])
    // Nothing left behind in the temporary directory.
    expect(readdirSync(tmp)).toEqual([])
  })

  test('an option it does not know, a --user call or a plain stop: the due reload first, the call as asked', () => {
    sh(
      oneDaemonReload(
        () =>
          [
            'systemctl daemon-reload',
            'systemctl -p ActiveState show x',
            'systemctl daemon-reload',
            'systemctl --user daemon-reload',
            'systemctl stop y',
          ].join('\n'),
        {systemdDir: running},
      ),
    )
    expect(calls()).toEqual(['daemon-reload', '-p ActiveState show x', 'daemon-reload', '--user daemon-reload', 'stop y'])
  })

  test("a postinst's own enable (unattended-upgrades') makes no reload of its own: one is due; --now and --global as asked", () => {
    const r = sh(
      oneDaemonReload(
        () =>
          [
            'systemctl enable unattended-upgrades; echo "enable said $?"',
            'systemctl --quiet mask x.service',
            'systemctl --global enable y.service',
            'systemctl enable --now z.timer',
            'systemctl disable w.service',
          ].join('\n'),
        {systemdDir: running},
      ),
    )
    expect(r.stdout).toBe('enable said 0\n')
    expect(calls()).toEqual([
      '--no-reload enable unattended-upgrades',
      '--no-reload --quiet mask x.service',
      // Not recognised (a user unit's, a start's): the reload due first, then the call as asked, with its own reload.
      'daemon-reload',
      '--global enable y.service',
      'enable --now z.timer',
      '--no-reload disable w.service',
      'daemon-reload',
    ])
  })

  test('no reload asked: none run; a transaction cut off (hung up) still runs the one due', () => {
    expect(sh(oneDaemonReload(() => 'systemctl is-enabled x', {systemdDir: running})).status).toBe(0)
    expect(calls()).toEqual(['is-enabled x'])
    writeFileSync(log, '')
    const r = sh(oneDaemonReload(() => "systemctl daemon-reload\nsh -c 'kill -HUP $PPID'; sleep 5", {systemdDir: running}))
    expect(r.status).toBe(129)
    expect(calls()).toEqual(['daemon-reload'])
    expect(readdirSync(tmp)).toEqual([])
  })

  test("apt's DPkg::Path: the shim's folder first, then apt's default; without the shim, apt's default alone", () => {
    const word = sh(oneDaemonReload((p) => `echo ${p}`, {systemdDir: running})).stdout.trim()
    expect(word).toMatch(new RegExp(`^${tmp}/[^:]+:/usr/sbin:/usr/bin:/sbin:/bin$`))
    expect(sh(oneDaemonReload((p) => `echo ${p}`, {systemdDir: join(dir, 'absent')})).stdout).toBe('/usr/sbin:/usr/bin:/sbin:/bin\n')
  })

  test('without a running systemd, every call goes to systemctl as it was', () => {
    sh(oneDaemonReload(() => 'systemctl daemon-reload\nsystemctl daemon-reload', {systemdDir: join(dir, 'absent')}))
    expect(calls()).toEqual(['daemon-reload', 'daemon-reload'])
    expect(() => oneDaemonReload(() => 'true', {systemdDir: '/run/x;rm -rf /'})).toThrow(/not a plain path/)
    expect(() => oneDaemonReload(() => 'true', {policyRcD: '/usr/sbin/policy rc'})).toThrow(/not a plain path/)
  })
})

describe('the starts a transaction asks for', () => {
  // The "real" deb-systemd-invoke logs to the same file as systemctl (the order of the two counts); policy-rc.d
  // refuses foobar's own service, as the install guard does.
  const invoke = join(dir, 'dsi-bin')
  const policy = join(dir, 'policy-rc.d')
  mkdirSync(invoke)
  writeFileSync(join(invoke, 'deb-systemd-invoke'), `#!/bin/sh\necho "dsi $*" >> ${log}\n`, {mode: 0o755})
  writeFileSync(policy, '#!/bin/sh\n[ "${1%.service}" = mine ] && exit 101\nexit 0\n', {mode: 0o755})
  const run = (script: string) =>
    spawnSync('/bin/sh', ['-c', oneDaemonReload(() => script, {systemdDir: running, policyRcD: policy})], {
      encoding: 'utf8',
      env: {PATH: `${invoke}:${bin}:/usr/bin:/bin`, TMPDIR: tmp},
    })
  beforeEach(() => writeFileSync(log, ''))

  test("a first install's starts are made once, together, after the last reload; restarts and stops at once; policy-rc.d still obeyed", () => {
    const r = run(
      [
        "deb-systemd-invoke start 'a.service' 'a.timer' >/dev/null || true",
        'systemctl --system daemon-reload',
        'deb-systemd-invoke start mine.service; echo "refused start said $?"',
        'deb-systemd-invoke restart b.service',
        'systemctl --system daemon-reload',
        'deb-systemd-invoke start c.service a.timer; echo "start said $?"',
        'exit 4',
      ].join('\n'),
    )
    expect(r.status).toBe(4)
    expect(r.stdout).toBe('refused start said 0\nstart said 0\n')
    expect(calls()).toEqual(['dsi restart b.service', 'daemon-reload', 'dsi start a.service a.timer c.service'])
    expect(readdirSync(tmp)).toEqual([])
  })

  test('a transaction cut off (hung up) still starts what it asked for; none asked, none made', () => {
    const r = run("deb-systemd-invoke start x.service\nsh -c 'kill -HUP $PPID'; sleep 5")
    expect(r.status).toBe(129)
    expect(calls()).toEqual(['dsi start x.service'])
    writeFileSync(log, '')
    expect(run('deb-systemd-invoke start mine.service').status).toBe(0)
    expect(calls()).toEqual([])
  })
})
