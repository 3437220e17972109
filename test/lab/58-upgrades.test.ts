/**
 * Staggered upgrades and pinned versions (issue 22, items 1 and 3) on real hosts. A variant of the lab inventory
 * pins tzdata per role (web: the newest version the lab's mirror has) and per host (web2: an older one), so the web
 * tier runs two versions. Shows: the pinned versions installed (web2 downgraded), verify reporting them per host,
 * a second provision with 0 changes, the upgrade timers of the two web servers at their own, non-overlapping
 * windows as `systemctl list-timers` shows them, and the gate: a host whose upgrade broke a service publishes it,
 * the other web server holds that version before its own upgrade, and verify fails on the broken host until it is
 * healthy again.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {foobar, json, variant} from './support/cli.js'
import {APT, labIsUp, ssh, sshOk} from './support/lab.js'

type Check = {host: string; check: string; ok: boolean; skipped?: boolean; detail: string}

const PKG = 'tzdata'
let inventory = ''
let newest = ''
let older = ''

const installed = async (host: string) => (await sshOk(host, `dpkg-query -W -f='\${Version}' ${PKG}`)).trim()

function verify(args: string[]): {code: number; checks: Check[]; raw: string} {
  const r = foobar(['verify', '-i', inventory, '--json', '--no-lynis', ...args])
  return {code: r.code, checks: ((r.stdout ? json<{checks: Check[]}>(r.stdout) : null)?.checks ?? []) as Check[], raw: r.stdout + r.stderr}
}

/** The next elapse of a timer, as `systemctl list-timers` prints it, in minutes of the day. */
async function nextElapse(host: string, timer: string): Promise<{line: string; minute: number}> {
  const out = await sshOk(host, `systemctl list-timers --all --no-pager ${timer}`)
  const line = out.split('\n').find((l) => l.includes(timer)) ?? ''
  const m = /\b\d{4}-\d\d-\d\d (\d\d):(\d\d):\d\d\b/.exec(line)
  if (!m) throw new Error(`${host}: no next elapse for ${timer} in:\n${out}`)
  return {line: line.trim(), minute: Number(m[1]) * 60 + Number(m[2])}
}

describe.skipIf(!labIsUp())('staggered upgrades and pinned versions', () => {
  beforeAll(async () => {
    // Two versions of one package on the lab's mirror (bookworm and bookworm-security/-updates).
    const madison = await sshOk('web1', `${APT} update -qq >/dev/null 2>&1; apt-cache madison ${PKG}`)
    const versions = [
      ...new Set(
        madison
          .split('\n')
          .map((l) => l.split('|')[1]?.trim())
          .filter((v): v is string => !!v),
      ),
    ]
    expect(versions.length, madison).toBeGreaterThanOrEqual(2)
    const sorted = (await sshOk('web1', `for v in ${versions.join(' ')}; do echo $v; done | sort -V`)).trim().split('\n')
    newest = sorted.at(-1)!
    older = sorted.at(-2)!
    console.log(`${PKG}: pinning web to ${newest}, web2 to ${older}`)
    inventory = variant('upgrades', (t) =>
      t
        .replace('hosts:\n', `roles:\n  web: {pins: {${PKG}: "${newest}"}}\n\nhosts:\n`)
        .replace(
          '    address: 10.77.0.13\n    roles: [web, db]',
          `    address: 10.77.0.13\n    roles: [web, db]\n    pins: {${PKG}: "${older}"}`,
        ),
    )
    const r = foobar(['provision', '-i', inventory, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  afterAll(async () => {
    await ssh('web2', 'sudo systemctl start nginx; sudo /usr/local/sbin/foobar-upgrade-gate check')
  })

  test('the pinned versions are installed: the role pin on web1, the host pin on web2 (a downgrade)', async () => {
    expect(await installed('web1')).toBe(newest)
    expect(await installed('web2')).toBe(older)
    expect(await sshOk('web2', 'cat /etc/apt/preferences.d/foobar-pins')).toContain(
      `Package: ${PKG}\nPin: version ${older}\nPin-Priority: 1001`,
    )
  })

  test('a second provision makes 0 changes', () => {
    const r = foobar(['provision', '-i', inventory, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(json(r.stdout).summary).toMatchObject({changed: 0, failed: 0, changes: 0})
  })

  test('verify reports the versions per host (a diverse web tier) and each upgrade window', () => {
    const v = verify(['--limit', 'web'])
    const versions = v.checks.filter((c) => c.check === 'package versions')
    for (const c of versions) console.log(`${c.host} package versions: ${c.detail}`)
    expect(versions.find((c) => c.host === 'web1')?.detail).toContain(`${PKG} ${newest} (pinned)`)
    expect(versions.find((c) => c.host === 'web2')?.detail).toContain(`${PKG} ${older} (pinned)`)
    for (const c of v.checks.filter((x) => x.check.startsWith('upgrade'))) {
      console.log(`${c.host} ${c.check}: ${c.detail}`)
      expect(c.ok, `${c.host} ${c.check}: ${c.detail}`).toBe(true)
    }
    expect(v.code, v.raw).toBe(0)
  })

  test('the upgrade timers of the two web servers never overlap (systemctl list-timers on the hosts)', async () => {
    // Defaults: from 02:00 over 6 h, two slots (the replica web2 first), 60-minute windows.
    const window = 60
    const web2 = await nextElapse('web2', 'apt-daily-upgrade.timer')
    const web1 = await nextElapse('web1', 'apt-daily-upgrade.timer')
    console.log(`web2: ${web2.line}\nweb1: ${web1.line}`)
    expect(web2.minute).toBe(2 * 60)
    expect(web1.minute).toBe(5 * 60)
    const d = (((web1.minute - web2.minute) % 1440) + 1440) % 1440
    expect(d >= window && 1440 - d >= window, `${d} minutes apart`).toBe(true)
    // The list refresh fires with the upgrade (which waits for it: After=apt-daily.service).
    expect((await nextElapse('web1', 'apt-daily.timer')).minute).toBe(web1.minute)
  })

  test('an upgrade that broke a service: published, held by the other web server, failed by verify until fixed', async () => {
    const gate = 'sudo FOOBAR_UPGRADE_TRIES=1 /usr/local/sbin/foobar-upgrade-gate'
    // web2's window: the gate records the versions before the upgrade; the "upgrade" then changed tzdata (the record
    // says it was another version) and left nginx down.
    await sshOk('web2', `${gate} pre`)
    await sshOk('web2', `sudo sed -i 's/^${PKG} .*/${PKG} 0-before/' /var/lib/foobar-upgrade/before && sudo systemctl stop nginx`)
    const post = await ssh('web2', `${gate} post`)
    expect(post.code, post.stderr).toBe(1)
    const status = await sshOk('web1', `timeout 5 bash -c 'exec 3<>/dev/tcp/10.77.0.13/9731 && cat <&3'`)
    expect(status).toContain('state broken')
    expect(status).toContain(`pkg ${PKG} 0-before ${older}`)
    // web1's window comes: it holds the version that broke web2.
    await sshOk('web1', `${gate} pre`)
    expect(await sshOk('web1', 'cat /etc/apt/preferences.d/foobar-upgrade-hold')).toContain(
      `Package: ${PKG}\nPin: version ${older}\nPin-Priority: -1`,
    )
    const v = verify(['--limit', 'web', '--timeout', '5'])
    const broken = v.checks.find((c) => c.host === 'web2' && c.check === 'upgrade status')
    console.log(`web2 upgrade status: ${broken?.detail}`)
    expect(broken, v.raw).toMatchObject({ok: false})
    expect(v.checks.find((c) => c.host === 'web1' && c.check === 'upgrade status')?.detail).toContain(`holding ${PKG} ${older}`)
    expect(v.code).not.toBe(0)
    // Fixed: the check clears the status, and web1's next window holds nothing.
    await sshOk('web2', `sudo systemctl start nginx && ${gate} check`)
    await sshOk('web1', `${gate} pre`)
    expect((await ssh('web1', 'test -e /etc/apt/preferences.d/foobar-upgrade-hold')).code).toBe(1)
    expect((await ssh('web1', 'sudo journalctl -t foobar-upgrade --no-pager -q | tail -n 3')).stdout).toMatch(/holding/)
    // Every answer, web1's before it had any status included, ended cleanly: no failed unit is left behind.
    for (const h of ['web1', 'web2']) expect(await sshOk(h, 'systemctl --failed --no-legend --plain'), h).toBe('')
  })

  test('a host with no upgrade status yet answers "state none", and leaves no failed unit', async () => {
    await sshOk('web1', 'sudo rm -f /var/lib/foobar-upgrade/status')
    const reply = await sshOk('web2', `timeout 5 bash -c 'exec 3<>/dev/tcp/10.77.0.12/9731 && cat <&3'`)
    expect(reply).toBe('foobar-upgrade-status 1\nstate none\n')
    // A peer that hangs up at once.
    await ssh('web2', `timeout 5 bash -c 'exec 3<>/dev/tcp/10.77.0.12/9731; exec 3<&-'`)
    await new Promise((r) => setTimeout(r, 1000))
    expect(await sshOk('web1', 'systemctl --failed --no-legend --plain')).toBe('')
  })
})
