/*
 * The live firewall compared with the desired rules (components/firewall/live.ts): ufw keys as ufw stores them,
 * iptables-save normalisation, drift for both backends. One test loads the rendered iptables files into a
 * throwaway network namespace (`unshare -n`, root only) and reads them back with foobar's own facts lines.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {desiredState} from '../../src/components/index.js'
import {type FirewallRule, desiredRules} from '../../src/components/firewall/index.js'
import {
  compareFirewall,
  desiredUfwKeys,
  firewallFactsScript,
  liveUfwKeys,
  type LiveFirewall,
  normaliseRule,
  normaliseRules,
  parseFirewallFacts,
} from '../../src/components/firewall/live.js'
import type {HostDesired} from '../../src/engine/desired.js'
import {factsScript, parseFacts} from '../../src/engine/facts.js'
import {iptablesVariant, loadExample} from './support/render.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-fwlive-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

/** The firewall's desired rules and rule files for a host's desired state, as the plan compares them. */
const wanted = (d: HostDesired) => desiredRules({inventory: d.inventory, host: d.host, ports: d.ports, controlAddress: d.controlAddress})

const rule = (port: number, from: string[], comment = 'c'): FirewallRule => ({port, proto: 'tcp', from, comment})

/** The `### tuple ###` body ufw writes for one allow rule (see ufw's backend_iptables.py). */
const tuple = (port: number, src: string, comment = '6363') =>
  `allow tcp ${port} ${src.includes(':') ? '::/0' : '0.0.0.0/0'} any ${src} in comment=${comment}`

describe('ufw keys', () => {
  test('a /32 or /128 source is a bare address; anywhere is 0.0.0.0/0 (and ::/0 with IPv6)', () => {
    const rules = [rule(22, ['10.77.0.1/32', '198.51.100.0/24', '2001:db8::1/128', '2001:db8:1::/48']), rule(443, [])]
    expect(desiredUfwKeys(rules, true)).toEqual([
      'allow tcp 22 from 10.77.0.1',
      'allow tcp 22 from 198.51.100.0/24',
      'allow tcp 22 from 2001:db8:1::/48',
      'allow tcp 22 from 2001:db8::1',
      'allow tcp 443 from 0.0.0.0/0',
      'allow tcp 443 from ::/0',
    ])
    expect(desiredUfwKeys(rules, false)).toEqual([
      'allow tcp 22 from 10.77.0.1',
      'allow tcp 22 from 198.51.100.0/24',
      'allow tcp 443 from 0.0.0.0/0',
    ])
  })

  test('a /24 keeps its prefix; 10.0.0.32/27 is not mistaken for a /32', () => {
    expect(desiredUfwKeys([rule(22, ['10.0.0.32/27'])], true)).toEqual(['allow tcp 22 from 10.0.0.32/27'])
  })

  test('live tuples read back to the same keys, comments and duplicates ignored; other directions kept apart', () => {
    const tuples = [
      tuple(22, '10.77.0.1'),
      tuple(22, '10.77.0.1', 'ffff'),
      tuple(443, '0.0.0.0/0'),
      tuple(443, '::/0'),
      'allow tcp 22 0.0.0.0/0 any 10.0.0.9 in_eth1',
    ]
    expect(liveUfwKeys(tuples)).toEqual([
      'allow in_eth1 tcp 22 from 10.0.0.9',
      'allow tcp 22 from 10.77.0.1',
      'allow tcp 443 from 0.0.0.0/0',
      'allow tcp 443 from ::/0',
    ])
  })
})

describe('iptables normalisation', () => {
  test('counters dropped; a one-word comment unquoted (iptables-save prints it bare); spaced comments stay quoted', () => {
    expect(normaliseRule(':INPUT DROP [123:4567]')).toBe(':INPUT DROP')
    expect(normaliseRule('-A INPUT -p tcp -m tcp --dport 8443 -m comment --comment "internal-api" -j ACCEPT')).toBe(
      '-A INPUT -p tcp -m tcp --dport 8443 -m comment --comment internal-api -j ACCEPT',
    )
    const spaced = '-A INPUT -s 10.77.0.1/32 -p tcp -m tcp --dport 22 -m comment --comment "ssh from admin networks" -j ACCEPT'
    expect(normaliseRule(spaced)).toBe(spaced)
  })

  test('normaliseRules drops comments and blank lines and keeps order', () => {
    expect(normaliseRules('# Managed by foobar\n*filter\n:INPUT DROP [0:0]\n\n-A INPUT -i lo -j ACCEPT  \nCOMMIT\n')).toEqual([
      '*filter',
      ':INPUT DROP',
      '-A INPUT -i lo -j ACCEPT',
      'COMMIT',
    ])
  })
})

describe('compareFirewall', () => {
  const ufwInv = loadExample('lab')
  const lb1 = ufwInv.hosts.find((h) => h.name === 'lb1')!
  const ufwDesired = desiredState(ufwInv, lb1, {controlAddress: '10.77.0.1'})
  const rules = wanted(ufwDesired).rules
  /** What a correctly activated ufw shows for these rules. */
  const ufwInSync = (): LiveFirewall => ({
    status: 'active',
    policy: 'DROP',
    tuples: rules.flatMap((r) =>
      r.from.length ? r.from.map((s) => tuple(r.port!, s.replace(/\/32$/, ''))) : [tuple(r.port!, '0.0.0.0/0'), tuple(r.port!, '::/0')],
    ),
    v4: [],
    v6: [],
    foreign: [],
  })

  test('ufw in sync', () => {
    expect(compareFirewall(lb1, rules, ufwInSync(), {})).toEqual({inSync: true, missing: [], extra: [], notes: []})
  })

  test('ufw: a missing rule and a rule someone added by hand', () => {
    const live = ufwInSync()
    live.tuples = live.tuples.filter((t) => !t.startsWith('allow tcp 443 ')).concat(tuple(3306, '0.0.0.0/0'))
    const drift = compareFirewall(lb1, rules, live, {})
    expect(drift.inSync).toBe(false)
    expect(drift.missing).toEqual(['allow tcp 443 from 0.0.0.0/0', 'allow tcp 443 from ::/0'])
    expect(drift.extra).toEqual(['allow tcp 3306 from 0.0.0.0/0'])
  })

  test('ufw inactive, not installed, or a default policy other than DROP is drift even with every rule present', () => {
    expect(compareFirewall(lb1, rules, {...ufwInSync(), status: 'inactive'}, {})).toMatchObject({
      inSync: false,
      missing: [],
      extra: [],
      notes: ['ufw is inactive'],
    })
    expect(compareFirewall(lb1, rules, {...ufwInSync(), status: ''}, {}).notes).toEqual(['ufw is not installed'])
    expect(compareFirewall(lb1, rules, {...ufwInSync(), policy: 'ACCEPT'}, {})).toMatchObject({
      inSync: false,
      notes: ['default incoming policy is ACCEPT, want DROP'],
    })
  })

  test("the raw lines of the firewall's facts script feed it", () => {
    const lines = ['status active', 'policy DROP', ...ufwInSync().tuples.map((t) => `tuple ${t}`)]
    const live = parseFirewallFacts(lines)
    expect(live.status).toBe('active')
    expect(compareFirewall(lb1, rules, live, {}).inSync).toBe(true)
  })

  test("ufw's facts script prints what its grep, seds and cat printed, from one awk", () => {
    // ufw's files as a host has them (user6.rules missing here), the last line without its newline.
    const dir = join(TMP, 'ufw-files')
    mkdirSync(dir)
    const paths = {defaults: join(dir, 'ufw'), rules: [join(dir, 'user.rules'), join(dir, 'user6.rules')]}
    const body = ufwInSync()
      .tuples.map((t) => `### tuple ### ${t}\n-A ufw-user-input -p tcp --dport 1 -j ACCEPT\n`)
      .join('')
    writeFileSync(paths.rules[0]!, `*filter\n${body}### tuple ### allow tcp 9 0.0.0.0/0 any 10.0.0.9 in`)
    // The script before this change, with the same files: the reference.
    const old = (p: typeof paths) =>
      [
        `if command -v ufw >/dev/null; then [ "$(iptables -S 2>/dev/null | grep -c -E '^-N ufw-user-(input|output|forward)$')" = 3 ] && echo "status active" || echo "status inactive"; else echo "status "; fi`,
        `echo "policy $(sed -n 's/^DEFAULT_INPUT_POLICY="\\(.*\\)"/\\1/p' ${p.defaults} 2>/dev/null)"`,
        `cat ${p.rules.join(' ')} 2>/dev/null | sed -n 's/^### tuple ### /tuple /p'`,
      ].join('\n')
    // Stand-ins: ufw (only there or not), iptables printing the chains it is given, and a sed, grep and cat that log.
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    const calls = join(dir, 'calls')
    writeFileSync(join(bin, 'ufw'), '#!/bin/sh\nexit 0\n', {mode: 0o755})
    writeFileSync(join(bin, 'iptables'), '#!/bin/sh\nprintf "%s" "$FAKE_CHAINS"\n', {mode: 0o755})
    writeFileSync(join(bin, 'ip6tables'), '#!/bin/sh\nprintf "%s" "$FAKE_CHAINS6"\n', {mode: 0o755})
    for (const tool of ['sed', 'grep', 'cat'])
      writeFileSync(join(bin, tool), `#!/bin/sh\necho ${tool} >> ${calls}\nexec /bin/${tool} "$@"\n`, {mode: 0o755})
    const run = (script: string, chains: string, withUfw = true, chains6 = '') => {
      writeFileSync(calls, '')
      const path = withUfw ? `${bin}:/usr/bin:/bin` : `${join(dir, 'no-ufw')}:/usr/bin:/bin`
      if (!withUfw) {
        mkdirSync(join(dir, 'no-ufw'), {recursive: true})
        for (const tool of ['iptables', 'ip6tables', 'sed', 'grep', 'cat'])
          spawnSync('cp', ['-f', join(bin, tool), join(dir, 'no-ufw', tool)])
      }
      const r = spawnSync('/bin/sh', ['-c', script], {
        encoding: 'utf8',
        env: {PATH: path, LC_ALL: 'C', FAKE_CHAINS: chains, FAKE_CHAINS6: chains6},
      })
      expect(r.status, r.stderr).toBe(0)
      return {out: r.stdout, calls: readFileSync(calls, 'utf8').split('\n').filter(Boolean)}
    }
    const three = '-P INPUT DROP\n-N ufw-user-input\n-N ufw-user-output\n-N ufw-user-forward\n-N ufw-user-limit\n'
    const cases: Array<[string, string, string, boolean]> = [
      ['active, DROP', 'DEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n', three, true],
      ['two chains: inactive', 'DEFAULT_INPUT_POLICY="DROP"\n', '-N ufw-user-input\n-N ufw-user-output\n', true],
      [
        'a comment after the value, the policy twice',
        '# x\nDEFAULT_INPUT_POLICY="ACCEPT" # "was" DROP\nDEFAULT_INPUT_POLICY="REJECT"',
        three,
        true,
      ],
      ['no policy line', 'IPV6=yes\n', three, true],
      ['no ufw', 'DEFAULT_INPUT_POLICY="DROP"\n', three, false],
    ]
    for (const [what, defaults, chains, withUfw] of cases) {
      writeFileSync(paths.defaults, defaults)
      const before = run(old(paths), chains, withUfw)
      const now = run(firewallFactsScript(lb1, paths), chains, withUfw)
      // The same lines; the last one now ends with its newline even where the file's did not (sed left it without).
      expect(now.out, what).toBe(before.out.replace(/([^\n])$/, '$1\n'))
      expect(now.calls, what).toEqual([])
    }
    // Without /etc/default/ufw at all: an empty policy, as before.
    rmSync(paths.defaults)
    expect(run(firewallFactsScript(lb1, paths), three).out).toBe(run(old(paths), three).out.replace(/([^\n])$/, '$1\n'))
    // And the lines feed the comparison: in sync with the rule that is there.
    writeFileSync(paths.defaults, 'DEFAULT_INPUT_POLICY="DROP"\n')
    const live = parseFirewallFacts(run(firewallFactsScript(lb1, paths), three).out.trim().split('\n'))
    expect(live).toMatchObject({status: 'active', policy: 'DROP'})
    expect(live.tuples).toEqual([...ufwInSync().tuples, 'allow tcp 9 0.0.0.0/0 any 10.0.0.9 in'])
    expect(live.foreign).toEqual([])

    // A host switched from the iptables backend: its ACCEPT rules are still in INPUT, ahead of ufw's jumps. ufw's
    // own jumps and the loopback rules ufw puts in the v6 built-ins (IPv6 off) are not foreign.
    const left = '-A INPUT -s 10.77.0.1/32 -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT'
    const switched = `${three}-A INPUT -i lo -j ACCEPT\n${left}\n-A INPUT -j ufw-before-logging-input\n-A OUTPUT -j ufw-before-output\n`
    const v6 =
      '-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n-A OUTPUT -o lo -j ACCEPT\n-A INPUT -j ufw6-before-input\n-A FORWARD -p tcp -j ACCEPT\n'
    const got = parseFirewallFacts(run(firewallFactsScript(lb1, paths), switched, true, v6).out.trim().split('\n'))
    expect(got.foreign).toEqual([`v4 ${left}`, 'v6 -A FORWARD -p tcp -j ACCEPT'])
    const drift = compareFirewall(lb1, rules, {...ufwInSync(), foreign: got.foreign}, {})
    expect(drift.inSync).toBe(false)
    expect(drift.notes).toEqual(['2 rules in the built-in chains outside ufw'])
    expect(drift.extra).toEqual([`v4 ${left}`, 'v6 -A FORWARD -p tcp -j ACCEPT'])
  })

  const iptInv = loadExample('lab', iptablesVariant)
  const web1 = iptInv.hosts.find((h) => h.name === 'web1')!
  const iptDesired = desiredState(iptInv, web1, {controlAddress: '10.77.0.1'})
  const iptWanted = wanted(iptDesired)
  const files = {v4: iptWanted.v4!, v6: iptWanted.v6!}
  /** As iptables-save prints it after loading the files: counters stripped by the facts script, one-word comments bare. */
  const saved = (text: string) => normaliseRules(text).map((l) => l.replace(/--comment "([A-Za-z0-9_-]+)"/, '--comment $1'))
  const iptInSync = (): LiveFirewall => ({tuples: [], v4: saved(files.v4), v6: saved(files.v6), foreign: []})

  test('iptables in sync; the rendered rules really are opened', () => {
    expect(files.v4).toContain('--dport 3306')
    expect(compareFirewall(web1, iptWanted.rules, iptInSync(), files)).toEqual({inSync: true, missing: [], extra: [], notes: []})
  })

  test('iptables: missing and extra rules per family; nothing loaded at all', () => {
    const live = iptInSync()
    const mysql = live.v4.find((l) => l.includes('--dport 3306'))!
    live.v4 = live.v4.filter((l) => l !== mysql)
    live.v6.push('-A INPUT -p tcp -m tcp --dport 23 -j ACCEPT')
    const drift = compareFirewall(web1, iptWanted.rules, live, files)
    expect(drift).toMatchObject({
      inSync: false,
      missing: [`v4 ${mysql}`],
      extra: ['v6 -A INPUT -p tcp -m tcp --dport 23 -j ACCEPT'],
      notes: [],
    })
    const empty = compareFirewall(web1, iptWanted.rules, {tuples: [], v4: [], v6: [], foreign: []}, files)
    expect(empty.inSync).toBe(false)
    expect(empty.notes).toEqual(['no iptables rules loaded'])
    expect(empty.missing.length).toBe(normaliseRules(files.v4).length + normaliseRules(files.v6).length)
  })

  test('iptables: a wrong default policy is drift', () => {
    const live = iptInSync()
    live.v4 = live.v4.map((l) => (l === ':INPUT DROP' ? ':INPUT ACCEPT' : l))
    const drift = compareFirewall(web1, iptWanted.rules, live, files)
    expect(drift.inSync).toBe(false)
    expect(drift.missing).toEqual(['v4 :INPUT DROP'])
    expect(drift.extra).toEqual(['v4 :INPUT ACCEPT'])
  })

  test('the rendered files loaded into a real (throwaway) netfilter and read back by the facts script are in sync', (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('needs root for a network namespace')
    writeFileSync(join(TMP, 'v4'), files.v4)
    writeFileSync(join(TMP, 'v6'), files.v6)
    const query = {packages: [], files: [], services: [], live: [{component: 'firewall', script: firewallFactsScript(web1)}]}
    const script = `iptables-restore < ${TMP}/v4 && ip6tables-restore < ${TMP}/v6 && {\n${factsScript(query)}\n}`
    const r = spawnSync('unshare', ['-n', 'sh', '-c', script], {
      encoding: 'utf8',
      env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C'},
      timeout: 20_000,
    })
    if (r.status !== 0 && /unshare|Operation not permitted|can't initialize|not found/i.test(r.stderr))
      return ctx.skip(`no network namespace / iptables here: ${r.stderr.trim()}`)
    expect(r.status, r.stderr).toBe(0)
    const facts = parseFacts(r.stdout, query)
    const live = parseFirewallFacts(facts.live.firewall!)
    expect(live.v4).toContain(':INPUT DROP')
    expect(compareFirewall(web1, iptWanted.rules, live, files)).toEqual({inSync: true, missing: [], extra: [], notes: []})
  })
})
