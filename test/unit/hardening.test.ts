/*
 * SSH and OS hardening (issue 10), pure parts: the inventory section, what is rendered, the plan against hand-made
 * facts (idempotence, drift, a container's read-only kernel settings, the guarded sshd reload) and the parsers of
 * ssh-audit's and Lynis' reports.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {STACK, desiredState} from '../../src/components/index.js'
import {parseSshAudit} from '../../src/components/hardening/audit.js'
import {applyHardening} from '../../src/components/hardening/activate.js'
import type {HardeningAction} from '../../src/components/hardening/live.js'
import type {Runner} from '../../src/remote/runner.js'
import type {HostApply} from '../../src/engine/contract.js'
import {
  AUTO_UPGRADES,
  FAIL2BAN_JAIL,
  DEBIAN_LYNIS_TIMER,
  NEEDLESS_UNITS,
  PROFILE_FILE,
  SSHD_DROPIN,
  SSHD_GUARDED,
  SYSCTL_FILE,
  USBGUARD_CONF,
  USBGUARD_RULES,
  hardeningSpec,
} from '../../src/components/hardening/index.js'
import {hardeningFactsScript, hardeningUnits} from '../../src/components/hardening/live.js'
import {SYSCTL} from '../../src/components/hardening/sysctl.js'
import {type HostDesired, preparePlanners} from '../../src/engine/desired.js'
import {type HostFacts, factsScript} from '../../src/engine/facts.js'
import {type Change, describe as describeChange, factQuery, planHost, sha256} from '../../src/engine/plan.js'
import {InventoryError, parseInventory} from '../../src/inventory/index.js'
import {ROOT, loadExample} from './support/render.js'

const LAB = readFileSync(join(ROOT, 'inventories', 'lab.yml'), 'utf8')
const FILE = join(ROOT, 'inventories', 'lab.yml')

/** The lab inventory with a hardening section at the top level (and optionally more text replaced). */
const withHardening = (section: string) => parseInventory(LAB.replace('\nhosts:\n', `\nhardening:\n${section}\n\nhosts:\n`), FILE)

function problems(section: string): string[] {
  try {
    withHardening(section)
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryError)
    return (error as InventoryError).problems.map((p) => `${p.field}: ${p.message}`)
  }
  throw new Error('expected the inventory to be rejected')
}

const host = (inv: ReturnType<typeof loadExample>, name: string) => inv.hosts.find((h) => h.name === name)!
const desired = (inv = loadExample('lab'), name = 'web1', controlAddress = '10.77.0.1') =>
  desiredState(inv, host(inv, name), {controlAddress})
const content = (d: HostDesired, path: string) => d.files.find((f) => f.path === path)?.content

describe('inventory: the hardening section', () => {
  test('defaults: every item on, ssh-audit clean, Lynis at least 80', () => {
    expect(host(loadExample('lab'), 'web1').hardening).toEqual({
      skip: {},
      allowUsers: [],
      allowGroups: [],
      revertAfter: 90,
      maxSessions: 2,
      shellTimeout: 900,
      thresholds: {sshAuditFail: 0, sshAuditWarn: 0, lynisMin: 80},
    })
  })

  test('an item is switched off only with its reason; roles and hosts add their own', () => {
    const inv = parseInventory(
      LAB.replace(
        '\nhosts:\n',
        '\nhardening:\n  skip: {fail2ban: "bans are done by the upstream firewall"}\n  thresholds: {lynis_min: 85}\nroles:\n  lb:\n    hardening: {skip: {services: "vendor agent needs rpcbind"}, allow_users: [ops]}\n\nhosts:\n',
      ),
      FILE,
    )
    expect(host(inv, 'lb1').hardening).toMatchObject({
      skip: {fail2ban: 'bans are done by the upstream firewall', services: 'vendor agent needs rpcbind'},
      allowUsers: ['ops'],
      thresholds: {sshAuditFail: 0, sshAuditWarn: 0, lynisMin: 85},
    })
    expect(host(inv, 'web1').hardening.skip).toEqual({fail2ban: 'bans are done by the upstream firewall'})
  })

  test.each([
    ['  skip: {fail2ban: ""}', 'hardening.skip.fail2ban: must be the reason'],
    ['  skip: {fail2ban: true}', 'hardening.skip.fail2ban:'],
    ['  skip: {fail2ban: "no; rm -rf /"}', 'hardening.skip.fail2ban: must be the reason'],
    ['  skip: {selinux: "not on Debian"}', 'hardening.skip'],
    ['  allow_users: ["ops;id"]', 'hardening.allow_users[0]: must be a Unix user or group name'],
    ['  allow_groups: [Admins]', 'hardening.allow_groups[0]: must be a Unix user or group name'],
    ['  thresholds: {lynis_min: 101}', 'hardening.thresholds.lynis_min:'],
    ['  thresholds: {ssh_audit_warn: -1}', 'hardening.thresholds.ssh_audit_warn:'],
    ['  revert_after: 5', 'hardening.revert_after:'],
    ['  max_sessions: 1', 'hardening.max_sessions: must be at least 2'],
    ['  shell_timeout: "900; id"', 'hardening.shell_timeout:'],
    ['  skip: {usb: "x"}', 'hardening.skip.usb: must be the reason'],
    ['  fail2ban: false', 'unknown field "fail2ban"'],
  ])('rejected: %s', (section, message) => {
    expect(problems(section).join('\n')).toContain(message)
  })
})

describe('rendering', () => {
  test.each([SSHD_DROPIN, SYSCTL_FILE, FAIL2BAN_JAIL, AUTO_UPGRADES])('lab web1: %s', (path) => {
    expect(content(desired(), path)).toMatchSnapshot()
  })

  test('sshd: modes and validation; reload only through the guarded step', () => {
    const f = desired().files.find((x) => x.path === SSHD_DROPIN)!
    expect(f).toMatchObject({mode: 0o600, owner: 'root', notify: [SSHD_GUARDED], validate: {mode: 'config', command: 'sshd -t'}})
    expect(desired().services.map((s) => s.name)).toEqual(expect.arrayContaining(['ssh', 'fail2ban']))
  })

  test('AllowUsers always names the ssh user first; AllowGroups only when listed', () => {
    const plain = content(desired(), SSHD_DROPIN)!
    expect(plain).not.toMatch(/^Allow(Users|Groups)/m)
    const inv = withHardening('  allow_users: [ops, deploy]\n  allow_groups: [sshusers]')
    const text = content(desired(inv), SSHD_DROPIN)!
    expect(text).toMatch(/^AllowUsers deploy ops$/m)
    expect(text).toMatch(/^AllowGroups sshusers$/m)
  })

  test('root keeps key-only login when foobar itself logs in as root, else no root login at all', () => {
    expect(content(desired(), SSHD_DROPIN)).toMatch(/^PermitRootLogin no$/m)
    const inv = parseInventory(LAB.replace('  user: deploy', '  user: root'), FILE)
    expect(content(desired(inv), SSHD_DROPIN)).toMatch(/^PermitRootLogin prohibit-password$/m)
  })

  test('fail2ban never bans the address foobar connects from (unless allow_control_address is off)', () => {
    expect(content(desired(), FAIL2BAN_JAIL)).toMatch(/^ignoreip = 127\.0\.0\.1\/8 ::1 10\.77\.0\.1$/m)
    const lab = loadExample('lab')
    expect(content(desiredState(lab, host(lab, 'web1')), FAIL2BAN_JAIL)).toMatch(/^ignoreip = 127\.0\.0\.1\/8 ::1$/m)
    const off = parseInventory(
      LAB.replace('  admin_cidrs: [10.77.0.1/32]', '  admin_cidrs: [10.77.0.1/32]\n  allow_control_address: false'),
      FILE,
    )
    expect(content(desired(off), FAIL2BAN_JAIL)).toMatch(/^ignoreip = 127\.0\.0\.1\/8 ::1$/m)
  })

  test('policy: idle shells end after shell_timeout (readonly TMOUT), none with 0; core dumps off for login shells', () => {
    expect(content(desired(), PROFILE_FILE)).toMatch(/^ulimit -c 0\nTMOUT=900\nreadonly TMOUT\nexport TMOUT$/m)
    const off = content(desired(withHardening('  shell_timeout: 0')), PROFILE_FILE)!
    expect(off).toMatch(/^ulimit -c 0$/m)
    expect(off).not.toContain('TMOUT')
    expect(content(desired(withHardening('  max_sessions: 6')), SSHD_DROPIN)).toMatch(/^MaxSessions 6$/m)
  })

  test('usb: USBGuard blocks every device but hubs and pure keyboards/mice; the daemon is left alone in containers', () => {
    const d = desired()
    expect(d.packages).toContain('usbguard')
    expect(d.files.find((f) => f.path === USBGUARD_RULES)).toMatchObject({mode: 0o600, notify: ['usbguard']})
    expect(
      content(d, USBGUARD_RULES)!
        .split('\n')
        .filter((l) => l && !l.startsWith('#')),
    ).toEqual(['allow with-interface match-all { 09:*:* }', 'allow with-interface match-all { 03:*:* }'])
    expect(content(d, USBGUARD_CONF)).toMatch(/^ImplicitPolicyTarget=block$/m)
    expect(content(d, USBGUARD_CONF)).toMatch(/^PresentControllerPolicy=apply-policy$/m)
    expect(d.services.find((s) => s.name === 'usbguard')).toMatchObject({
      onChange: 'restart',
      notInContainer: expect.stringContaining('container'),
    })
    const skipped = desired(withHardening('  skip: {usb: "a cloud VM without USB"}'))
    expect(skipped.packages).not.toContain('usbguard')
    expect(skipped.files.filter((f) => f.path.includes('usbguard'))).toEqual([])
  })

  test('a skipped item renders nothing and installs nothing', () => {
    const inv = withHardening(
      '  skip:\n    ssh: "managed by the provider"\n    fail2ban: "upstream firewall bans"\n    unattended_upgrades: "patched by the image pipeline"\n    sysctl: "set by the hypervisor"',
    )
    const d = desired(inv)
    for (const p of [SSHD_DROPIN, SYSCTL_FILE, FAIL2BAN_JAIL, AUTO_UPGRADES]) expect(content(d, p), p).toBeUndefined()
    expect(d.packages).not.toEqual(expect.arrayContaining(['fail2ban']))
    expect(d.packages).not.toContain('unattended-upgrades')
    expect(hardeningSpec(d.host)).toMatchObject({sysctl: {}, skipped: {ssh: 'managed by the provider'}})
    expect(hardeningSpec(d.host).modes.length).toBeGreaterThan(0)
  })
})

/** The hardening fact lines of a host whose kernel, modes and units are as `values` say (default: converged). */
function hardFacts(
  d: HostDesired,
  values: {sysctl?: Record<string, string | undefined>; modes?: Record<string, string>; units?: Record<string, string>} = {},
): string[] {
  const spec = hardeningSpec(d.host)
  return [
    ...Object.entries(spec.sysctl).map(([k, v]) => `sysctl ${k} ${k in (values.sysctl ?? {}) ? (values.sysctl![k] ?? '-') : v}`),
    ...spec.modes.map(({path, mode}) => `mode ${path} ${values.modes?.[path] ?? `${mode.toString(8)} root root`}`),
    ...Object.entries(values.units ?? {}).map(([u, state]) => `unit ${u} ${state}`),
  ]
}

function facts(d: HostDesired, hardening: string[], virt = 'kvm', pendingReloads: string[] = []): HostFacts {
  const files: HostFacts['files'] = {}
  for (const f of d.files)
    files[f.path] = {exists: true, mode: f.mode, owner: f.owner, group: f.group, sha256: sha256(f.content), content: f.content}
  for (const p of d.absent) files[p] = {exists: false}
  return {
    os: 'debian 12',
    virt,
    packages: Object.fromEntries(d.packages.map((p) => [p, 'installed' as const])),
    files,
    services: Object.fromEntries(d.services.map((s) => [s.name, {enabled: 'enabled', active: 'active'}])),
    pendingReloads,
    live: {hardening},
  }
}

/** The hardening steps of a plan. */
const hardeningChanges = (changes: Change[]) => changes.filter((c) => c.kind === 'live' && c.component === 'hardening')
/** What each hardening step is about (the planned HardeningAction). */
const hardeningOf = (changes: Change[]) => hardeningChanges(changes).flatMap((c) => (c.kind === 'live' ? [c.action.data] : []))
/** Only the hardening component (and its live planner), so the firewall's live state does not matter here. */
const only = (inv = loadExample('lab')) =>
  desiredState(inv, host(inv, 'web1'), {
    controlAddress: '10.77.0.1',
    only: ['hardening'],
    planners: preparePlanners(STACK, inv, inv.hosts, ['hardening']),
  })

describe('plan against hand-made facts', () => {
  test('a converged host plans nothing, on a VM and in a container (idempotence)', () => {
    const d = only()
    expect(planHost(d, facts(d, hardFacts(d), 'kvm')).changes).toEqual([])
    expect(planHost(d, facts(d, hardFacts(d), 'systemd-nspawn')).changes).toEqual([])
  })

  test('the fact script asks for every key, path and unit, quoted', () => {
    const script = hardeningFactsScript(hardeningSpec(only().host))
    // Read by the shell from /proc/sys (units.test checks the lines against `sysctl -n`'s for real).
    for (const k of Object.keys(SYSCTL)) expect(script).toContain(`< /proc/sys/${k.replaceAll('.', '/')}; fi; echo "sysctl ${k} $fb_v"`)
    expect(script).toContain("stat -c 'mode %n %a %U %G'")
    expect(script).toContain('if [ -e /etc/crontab ]; then set -- "$@" /etc/crontab; fi')
    // The units are asked by the engine, with the other facts' (one systemctl query a host).
    const d = only()
    const hostScript = factsScript(factQuery(d))
    for (const u of NEEDLESS_UNITS) {
      expect(hardeningUnits(hardeningSpec(d.host))).toContain(u)
      expect(hostScript).toContain(`fb_K="$fb_K ${u}"`)
    }
  })

  test('a VM: every kernel setting that differs is set, in one step', () => {
    const d = only()
    const actions = hardeningOf(
      planHost(d, facts(d, hardFacts(d, {sysctl: {'kernel.kptr_restrict': '0', 'net.ipv4.conf.all.rp_filter': '2'}}))).changes,
    )
    expect(actions).toEqual([{kind: 'sysctl', set: {'kernel.kptr_restrict': '2', 'net.ipv4.conf.all.rp_filter': '1'}, skipped: {}}])
  })

  test('a container: kernel.* and fs.* are skipped with the reason, net.* still set; a missing key is skipped too', () => {
    const d = only()
    const live = {
      'kernel.kptr_restrict': '0',
      'fs.suid_dumpable': '2',
      'net.ipv4.tcp_syncookies': '0',
      'kernel.yama.ptrace_scope': undefined,
    }
    const [change, ...rest] = hardeningChanges(planHost(d, facts(d, hardFacts(d, {sysctl: live}), 'systemd-nspawn')).changes)
    expect(rest).toEqual([])
    const action = change?.kind === 'live' ? change.action.data : undefined
    expect(action).toMatchObject({kind: 'sysctl', set: {'net.ipv4.tcp_syncookies': '1'}})
    const skipped = (action as {skipped: Record<string, string>}).skipped
    expect(Object.keys(skipped).sort()).toEqual(
      Object.keys(SYSCTL)
        .filter((k) => !k.startsWith('net.'))
        .sort(),
    )
    expect(skipped['kernel.kptr_restrict']).toMatch(/container: only net\.\* can be set/)
    expect(describeChange(change!)).toMatch(/^set net\.ipv4\.tcp_syncookies=1 \(skipped: \d+ keys in a container/)
    // On a VM, a key this kernel lacks is skipped rather than failing the run.
    const vm = hardeningOf(
      planHost(d, facts(d, hardFacts(d, {sysctl: {'kernel.yama.ptrace_scope': undefined, 'kernel.sysrq': '1'}}))).changes,
    )
    expect(vm).toEqual([{kind: 'sysctl', set: {'kernel.sysrq': '0'}, skipped: {'kernel.yama.ptrace_scope': 'not in this kernel'}}])
  })

  test('permissions: an existing cron or sshd path too open is tightened; an absent one is left absent', () => {
    const d = only()
    const lines = hardFacts(d, {modes: {'/etc/crontab': '644 root root', '/etc/cron.daily': '755 root root'}}).filter(
      (l) => !l.startsWith('mode /etc/cron.weekly'),
    )
    const actions = hardeningOf(planHost(d, facts(d, lines)).changes)
    expect(actions).toEqual([
      {kind: 'mode', path: '/etc/crontab', mode: 0o600, was: '644 root:root'},
      {kind: 'mode', path: '/etc/cron.daily', mode: 0o700, was: '755 root:root'},
    ])
  })

  test('the planned modes, one line each in the plan, are applied in one round trip when the host is provisioned', async () => {
    const d = only()
    const modes = {'/etc/crontab': '644 root root', '/etc/cron.daily': '755 root root', '/etc/ssh/sshd_config': '644 root root'}
    const changes = hardeningChanges(planHost(d, facts(d, hardFacts(d, {modes}))).changes)
    expect(changes.map(describeChange)).toEqual([
      'tighten /etc/crontab to 600 root:root (was 644 root:root)',
      'tighten /etc/cron.daily to 700 root:root (was 755 root:root)',
      'tighten /etc/ssh/sshd_config to 600 root:root (was 644 root:root)',
    ])
    const scripts: string[] = []
    const runner = {run: async (script: string) => (scripts.push(script), {code: 0, stdout: '', stderr: ''})} as unknown as Runner
    for (const c of changes) if (c.kind === 'live') await c.action.apply!({runner, step: () => {}} as unknown as HostApply)
    expect(scripts).toEqual([
      'chown root:root /etc/crontab && chmod 600 /etc/crontab && chown root:root /etc/cron.daily && chmod 700 /etc/cron.daily && chown root:root /etc/ssh/sshd_config && chmod 600 /etc/ssh/sshd_config',
    ])
  })

  test('units that cannot work in a container (USBGuard, process accounting) are stopped there, left to run on a VM', () => {
    const d = only()
    const units = {'usbguard.service': 'enabled activating', 'usbguard-dbus.service': 'enabled active', 'acct.service': 'enabled failed'}
    const inContainer = hardeningChanges(planHost(d, facts(d, hardFacts(d, {units}), 'systemd-nspawn')).changes)
    expect(inContainer.map(describeChange)).toEqual([
      'stop usbguard.service: not run in a container (was activating)',
      'stop usbguard-dbus.service: not run in a container (was active)',
      'stop acct.service: not run in a container (was failed)',
    ])
    const stopped = {
      'usbguard.service': 'enabled inactive',
      'usbguard-dbus.service': 'enabled inactive',
      'acct.service': 'enabled inactive',
    }
    expect(planHost(d, facts(d, hardFacts(d, {units: stopped}), 'systemd-nspawn')).changes).toEqual([])
    expect(hardeningOf(planHost(d, facts(d, hardFacts(d, {units}), 'kvm')).changes)).toEqual([])
  })

  test('needless services: a running or enabled one is disabled; absent, masked or off ones are not', () => {
    const d = only()
    const units = {
      'rpcbind.service': 'enabled active',
      'rpcbind.socket': 'enabled inactive',
      'cups.service': 'masked inactive',
      'avahi-daemon.service': 'none inactive',
    }
    const actions = hardeningChanges(planHost(d, facts(d, hardFacts(d, {units}))).changes)
    expect(actions.map(describeChange)).toEqual([
      'stop and disable rpcbind.socket (was enabled, inactive)',
      'stop and disable rpcbind.service (was enabled, active)',
    ])
  })

  test("Debian's own daily Lynis timer is stopped and disabled where foobar's runs; left alone when the audit tools are skipped", () => {
    const d = only()
    const units = {[DEBIAN_LYNIS_TIMER]: 'enabled active'}
    expect(hardeningChanges(planHost(d, facts(d, hardFacts(d, {units}))).changes).map(describeChange)).toEqual([
      'stop and disable lynis.timer (was enabled, active)',
    ])
    // Once off, nothing; with the audit tools skipped, not foobar's business.
    expect(hardeningOf(planHost(d, facts(d, hardFacts(d, {units: {[DEBIAN_LYNIS_TIMER]: 'disabled inactive'}}))).changes)).toEqual([])
    const skipped = only(withHardening('  skip: {audit_tools: "audited elsewhere"}'))
    expect(hardeningSpec(skipped.host).disable).not.toContain(DEBIAN_LYNIS_TIMER)
    expect(hardeningOf(planHost(skipped, facts(skipped, hardFacts(skipped, {units}))).changes)).toEqual([])
  })

  test('sshd: a changed drop-in plans the guarded reload (not a plain one); so does one left pending', () => {
    const d = only()
    const f = facts(d, hardFacts(d))
    f.files[SSHD_DROPIN] = {exists: true, mode: 0o600, owner: 'root', group: 'root', sha256: 'old', content: 'PermitRootLogin yes\n'}
    const changes = planHost(d, f).changes
    expect(changes.map((c) => (c.kind === 'live' ? `${c.kind} ${c.component}` : c.kind))).toEqual(['file', 'live hardening'])
    expect(changes.some((c) => c.kind === 'reload')).toBe(false)
    expect(describeChange(changes[1]!)).toBe('reload ssh, confirmed by a fresh SSH connection (config changed)')
    expect(changes[1]!.kind === 'live' && changes[1]!.action.guarded).toBe(true)
    const pending = planHost(d, facts(d, hardFacts(d), 'kvm', [SSHD_GUARDED])).changes
    expect(hardeningOf(pending)).toEqual([{kind: 'sshd', reason: 'pending from an interrupted run'}])
    // A mode fix alone does not reload anything.
    const g = facts(d, hardFacts(d))
    g.files[SSHD_DROPIN] = {...g.files[SSHD_DROPIN]!, mode: 0o644}
    expect(planHost(d, g).changes.map((c) => c.kind)).toEqual(['file'])
  })

  test('switched-off items plan nothing of theirs', () => {
    const inv = withHardening(
      '  skip: {sysctl: "set by the hypervisor", permissions: "audited elsewhere", services: "vendor agent needs rpcbind"}',
    )
    const d = only(inv)
    const f = facts(d, ['sysctl kernel.kptr_restrict 0', 'mode /etc/crontab 644 root root', 'unit rpcbind.service enabled active'])
    expect(planHost(d, f).changes).toEqual([])
  })
})

describe('scores', () => {
  const fixture = (name: string) => readFileSync(join(ROOT, 'test', 'unit', 'fixtures', name), 'utf8')

  test("ssh-audit against Debian 12's default sshd: the NIST curves fail, E&M and small MACs warn", () => {
    const r = parseSshAudit(fixture('ssh-audit-debian12-default.txt'))
    expect(r.banner).toMatch(/^SSH-2\.0-OpenSSH_9\.2p1 Debian/)
    expect(r.fail).toEqual([
      'kex ecdh-sha2-nistp256: using weak elliptic curves',
      'kex ecdh-sha2-nistp384: using weak elliptic curves',
      'kex ecdh-sha2-nistp521: using weak elliptic curves',
    ])
    // 11 here; with the ECDSA host key of a fresh host it is 4 fail and 12 warn (13 counting kex-strict).
    expect(r.warn).toHaveLength(11)
    expect(r.warn).toContain('mac umac-64@openssh.com: using small 64-bit tag size')
    expect(r.ignored).toEqual(['kex kex-strict-s-v00@openssh.com: unknown algorithm'])
  })

  test('ssh-audit against the hardened sshd: 0 fail, 0 warn; the Terrapin countermeasure is not counted', () => {
    const r = parseSshAudit(fixture('ssh-audit-foobar-hardened.txt'))
    expect(r).toEqual({
      banner: 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10',
      fail: [],
      warn: [],
      ignored: ['kex kex-strict-s-v00@openssh.com: unknown algorithm'],
    })
    expect(parseSshAudit('[exception] cannot connect to 10.0.0.1 port 22').banner).toBeUndefined()
  })
})

describe('applyHardening', () => {
  /** A runner that records each round trip and runs nothing (the modes' commands are plain chown/chmod). */
  const recorder = () => {
    const scripts: string[] = []
    const runner = {
      host: {name: 'web1'},
      run: async (script: string) => (scripts.push(script), {code: 0, stdout: '', stderr: ''}),
    } as unknown as Runner
    return {runner, scripts}
  }

  test('the modes next to each other go in one round trip, in order, each only if the one before it succeeded', async () => {
    const {runner, scripts} = recorder()
    const steps: string[] = []
    await applyHardening(
      runner,
      [
        {kind: 'mode', path: '/etc/cron.d', mode: 0o700, was: '755 root:root'},
        {kind: 'mode', path: '/etc/ssh/sshd_config', mode: 0o600, was: '644 root:root'},
        {kind: 'sysctl', set: {'kernel.kptr_restrict': '2'}, skipped: {}},
        {kind: 'mode', path: '/etc/cron.daily', mode: 0o700, was: '755 root:root'},
      ] as HardeningAction[],
      (s) => steps.push(s),
    )
    expect(scripts).toEqual([
      'chown root:root /etc/cron.d && chmod 700 /etc/cron.d && chown root:root /etc/ssh/sshd_config && chmod 600 /etc/ssh/sshd_config',
      'sysctl -q -w kernel.kptr_restrict=2',
      'chown root:root /etc/cron.daily && chmod 700 /etc/cron.daily',
    ])
    expect(steps[0]).toBe('tightening /etc/cron.d, /etc/ssh/sshd_config')
  })
})
