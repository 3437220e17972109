/**
 * SSH and OS hardening on real hosts (issue 10): ssh-audit clean from the control machine, root and password
 * logins refused, foobar still in as deploy with sudo, a second provision that changes nothing, an sshd change
 * that would lock the operator out reverted by the host on its own, and the Lynis hardening index.
 */
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {NodeSSH} from 'node-ssh'
import {beforeAll, describe, expect, test} from 'vitest'
import {loadInventory} from '../../src/inventory/index.js'
import {sshArgs} from '../../src/lab/index.js'
import {Connection} from '../../src/remote/connection.js'
import {foobar, json, variant, waitFor} from './support/cli.js'
import {LAB_INVENTORY, labHosts, labIsUp, paths, ssh, sshOk} from './support/lab.js'

const HOSTS = ['lb1', 'web1', 'web2']

type Check = {host: string; check: string; ok: boolean; skipped?: boolean; detail: string}

function verify(args: string[]): {code: number; checks: Check[]; raw: string} {
  const r = foobar(['verify', '-i', LAB_INVENTORY, '--json', ...args])
  return {
    code: r.code,
    checks: ((r.stdout ? json<{checks: Check[]} | null>(r.stdout) : null)?.checks ?? []) as Check[],
    raw: r.stdout + r.stderr,
  }
}

describe.skipIf(!labIsUp())('hardening', () => {
  beforeAll(() => {
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  test('a second provision makes 0 changes', () => {
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(json(r.stdout).summary).toMatchObject({ok: 3, changed: 0, failed: 0, changes: 0})
  })

  test("after the package transaction: the packages' own services started at its end, Debian's Lynis timer off, no shim or guard left", async () => {
    for (const h of HOSTS) {
      // Started when the transaction ended (deb-systemd-invoke, once), not one by one inside it.
      expect(await sshOk(h, 'systemctl is-active unattended-upgrades.service apt-show-versions.timer foobar-lynis.timer'), h).toBe(
        'active\nactive\nactive\n',
      )
      // foobar's own Lynis timer replaces Debian's.
      expect(await ssh(h, 'systemctl is-enabled lynis.timer; systemctl is-active lynis.timer'), h).toMatchObject({
        stdout: 'disabled\ninactive\n',
      })
      // Present during the transaction only.
      expect(
        await sshOk(h, 'for p in /usr/sbin/policy-rc.d /usr/sbin/apt-show-versions; do test -e $p && echo "$p left"; done; true'),
        h,
      ).toBe('')
    }
  })

  test("rkhunter's file properties database is built after the package transaction, in the background; its install guard is gone", async () => {
    for (const h of HOSTS) {
      // foobar's guard is only there during the transaction that installs rkhunter.
      expect(await sshOk(h, 'test -e /etc/rkhunter.conf.local && echo left || echo gone'), h).toBe('gone\n')
      const ms = await waitFor(
        `${h}: rkhunter's database`,
        async () => (await sshOk(h, 'sudo -n test -e /var/lib/rkhunter/db/rkhunter.dat && echo yes || echo no')) === 'yes\n',
        10 * 60_000,
      )
      console.log(`${h}: rkhunter's database there ${(ms / 1000).toFixed(0)} s after this test started looking`)
      // Built by rkhunter itself, with the files it always records.
      expect(Number(await sshOk(h, 'sudo -n grep -c "^File:" /var/lib/rkhunter/db/rkhunter.dat')), h).toBeGreaterThan(50)
      expect(await sshOk(h, 'systemctl show -p Result --value foobar-rkhunter-propupd.service'), h).toBe('success\n')
    }
    const v = verify(['--no-lynis'])
    const checks = v.checks.filter((c) => c.check === 'hardening rkhunter')
    expect(checks.map((c) => c.host).sort()).toEqual(HOSTS)
    for (const c of checks) expect(c, v.raw).toMatchObject({ok: true, detail: 'file properties database built'})
    // And a provision now has nothing to start.
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })

  test('ssh-audit from the control machine: 0 fail and 0 warn on every host', () => {
    const v = verify(['--no-lynis'])
    const audits = v.checks.filter((c) => c.check === 'ssh-audit')
    expect(audits.map((c) => c.host).sort()).toEqual(HOSTS)
    for (const c of audits) {
      console.log(`${c.host} ssh-audit: ${c.detail}`)
      expect(c, v.raw).toMatchObject({ok: true, detail: expect.stringMatching(/^0 fail, 0 warn/)})
    }
    // Every other hardening check passes too; in a container the kernel.*/fs.* settings are reported as skipped.
    for (const c of v.checks.filter((x) => x.check.startsWith('hardening'))) expect(c.ok, `${c.host} ${c.check}: ${c.detail}`).toBe(true)
    const notSettable = v.checks.filter((c) => c.check === 'hardening sysctl (not settable)')
    expect(
      notSettable.every((c) => c.skipped && /in a container/.test(c.detail)),
      JSON.stringify(notSettable),
    ).toBe(true)
    expect(v.code, v.raw).toBe(0)
  })

  test('a kernel setting changed by hand: verify names it and fails; provision sets it back', async () => {
    const key = 'net.ipv4.conf.all.send_redirects'
    await sshOk('web1', `sudo sysctl -qw ${key}=1`)
    const v = verify(['--no-lynis', '--timeout', '3'])
    const check = v.checks.find((c) => c.host === 'web1' && c.check === 'hardening sysctl')
    expect(check, v.raw).toMatchObject({ok: false, detail: `not as set: ${key}`})
    expect(v.code, v.raw).not.toBe(0)
    const p = foobar(['provision', '-i', LAB_INVENTORY, '--yes', '--json'])
    expect(p.code, p.stderr).toBe(0)
    expect(json(p.stdout).summary).toMatchObject({changed: 1, failed: 0})
    expect((await sshOk('web1', 'cat /proc/sys/net/ipv4/conf/all/send_redirects')).trim()).toBe('0')
  })

  test('root login and password login are refused; deploy still logs in with its key and has sudo', async () => {
    for (const h of await labHosts()) {
      // The lab image puts the same key in root's authorized_keys: only sshd's config refuses it.
      const root = await ssh(h, 'true', {user: 'root'})
      expect(root.code, `${h.name} root: ${root.stderr}`).toBe(255)
      expect(root.stderr).toMatch(/Permission denied/)

      const args = sshArgs(paths, h.address)
      const password = spawnSync(
        'ssh',
        [...args.slice(0, -1), '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', args.at(-1)!, 'true'],
        {encoding: 'utf8', timeout: 30_000},
      )
      expect(password.status, `${h.name} password: ${password.stderr}`).toBe(255)
      // The server offers nothing but public keys.
      expect(password.stderr).toMatch(/Permission denied \(publickey\)/)

      expect(await sshOk(h, 'sudo -n id -u')).toBe('0\n')
      expect(await sshOk(h, 'sudo -n sshd -T | grep -E "^(permitrootlogin|passwordauthentication|maxsessions|clientalivecountmax) "')).toBe(
        'maxsessions 2\nclientalivecountmax 2\npermitrootlogin no\npasswordauthentication no\n',
      )
    }
    // foobar itself (its own SSH library, several channels on one connection) still gets in as deploy.
    const plan = foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode'])
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
  })

  test('sshd refuses a third channel on one connection (MaxSessions 2); foobar queues its commands and all succeed', async () => {
    const host = (await loadInventory(LAB_INVENTORY)).hosts.find((h) => h.name === 'web1')!
    // A plain SSH client (ssh2, under node-ssh) that opens channels freely: sshd itself enforces the limit.
    const raw = new NodeSSH()
    await raw.connect({
      host: host.address,
      username: host.ssh.user,
      privateKey: readFileSync(host.ssh.identityFile!, 'utf8'),
      hostVerifier: () => true,
    })
    try {
      const exec = () =>
        new Promise<string>((resolve) =>
          raw.connection!.exec('sleep 2; echo done', (err, channel) => {
            if (err) return resolve(`refused: ${err.message}`)
            let out = ''
            channel.on('data', (d: Buffer) => (out += d)).on('close', () => resolve(out.trim()))
          }),
        )
      const three = await Promise.all([exec(), exec(), exec()])
      expect(three.sort()).toEqual(['done', 'done', expect.stringMatching(/^refused: .*open failed/)])
    } finally {
      raw.dispose()
    }
    const conn = await Connection.open(host)
    try {
      const eight = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((n) => conn.run(`sleep 0.3; echo ${n}`)))
      expect(eight.map((r) => r.stdout.trim())).toEqual(['1', '2', '3', '4', '5', '6', '7', '8'])
    } finally {
      conn.close()
    }
  })

  test('policy and USB: idle shells time out, core dumps off, password quality, assembler for root only, USBGuard rules valid', async () => {
    for (const h of HOSTS) {
      // An interactive login shell gets a read-only TMOUT; foobar's own commands are not login shells.
      expect(await sshOk(h, 'bash -lc \'echo "$TMOUT $(ulimit -c)"; readonly -p | grep -c " TMOUT="\'')).toBe('900 0\n1\n')
      expect(await sshOk(h, 'grep -c "pam_pwquality.so" /etc/pam.d/common-password')).toBe('1\n')
      expect(await sshOk(h, 'stat -c "%a %U" "$(readlink -f /usr/bin/as)"')).toBe('750 root\n')
      expect(await sshOk(h, 'grep -cE "^(Authorized|used as evidence)" /etc/issue')).toBe('2\n')
      // Every rule parses; the daemon is conditioned out in a container (the host machine owns the USB devices)
      // and, although its package started it before foobar's drop-in existed, no unit is left failed.
      expect(
        await sshOk(
          h,
          'sudo -n sh -c \'grep -v "^#" /etc/usbguard/rules.conf | while read -r r; do usbguard-rule-parser "$r" >/dev/null || echo "bad: $r"; done\'',
        ),
      ).toBe('')
      expect(await sshOk(h, 'systemctl is-active usbguard || true')).toBe('inactive\n')
      expect(await sshOk(h, 'systemctl --failed --no-legend --plain')).toBe('')
    }
    const v = verify(['--no-lynis'])
    expect(v.checks.filter((c) => c.check === 'service usbguard')).toEqual(
      HOSTS.map((host) => expect.objectContaining({host, ok: true, skipped: true, detail: expect.stringMatching(/in a container/)})),
    )
  })

  test('fail2ban guards sshd from the journal; unattended-upgrades is set up; cron and sshd files are tightened', async () => {
    for (const h of HOSTS) {
      expect(await sshOk(h, 'sudo -n fail2ban-client status sshd')).toMatch(/Journal matches:.*_COMM=sshd/)
      expect(await sshOk(h, 'apt-config dump APT::Periodic::Unattended-Upgrade')).toMatch(/"1"/)
      expect(await sshOk(h, 'stat -c %a /etc/ssh/sshd_config')).toBe('600\n')
    }
  })

  test('an sshd config that would lock the operator out: the fresh connection fails, the host reverts on its own', async () => {
    // A group deploy is not in: the drop-in is valid (sshd -t passes), but no new login of deploy would work.
    const lockout = variant('sshd-lockout', (t) =>
      t
        .replace('\nhosts:\n', '\nhardening:\n  allow_groups: [sshadmins]\n  revert_after: 30\n\nhosts:\n')
        .replace('  sudo: true', '  sudo: true\n  connect_timeout: 4'),
    )
    const t0 = Date.now()
    const r = foobar(['provision', '-i', lockout, '--limit', 'web2', '--yes'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stdout + r.stderr).toMatch(/fresh SSH connection failed after the sshd change/)
    expect(r.stdout + r.stderr).toMatch(/restores its previous config on its own within 30s/)
    // Locked out for now: a new login as deploy is refused ...
    expect((await ssh('web2', 'true')).code).toBe(255)
    // ... until the host's own timer puts the previous drop-in back and reloads sshd.
    const waited = await waitFor('deploy can log in to web2 again', async () => (await ssh('web2', 'true')).code === 0, 90_000)
    console.log(
      `sshd lockout reverted by the host ${((Date.now() - t0) / 1000).toFixed(0)} s after the provision started (waited ${(waited / 1000).toFixed(0)} s)`,
    )
    expect(await sshOk('web2', 'sudo -n grep -c AllowGroups /etc/ssh/sshd_config.d/50-foobar.conf || true')).toBe('0\n')
    // The interrupted guarded reload is finished by the next run (guarded again), then nothing is left to do.
    const again = foobar(['provision', '-i', LAB_INVENTORY, '--limit', 'web2', '--yes'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(foobar(['plan', '-i', LAB_INVENTORY, '--detailed-exitcode']).code).toBe(0)
  })

  /** The stamps of a host's latest Lynis report and of foobar's last change there (host clock, seconds). */
  async function lynisStamps(host: string): Promise<{lastApply: number; started?: number}> {
    const out = await sshOk(
      host,
      'sudo -n sh -c "cat /var/lib/foobar/last-apply; grep ^foobar_started= /var/lib/foobar/lynis/report.dat 2>/dev/null || true"',
    )
    const [applied, started] = out.split('\n')
    return {lastApply: Number(applied), started: started ? Number(started.split('=')[1]) : undefined}
  }

  // One Lynis run (minutes on 2 cores), on web1: its score, from a run after foobar's last change, where web1 holds a
  // report from before that change that verify must not use.
  test(
    "Lynis hardening index, run now where the report is older than foobar's last change; the next verify reads the report in seconds",
    async () => {
      expect(await sshOk('web1', 'systemctl is-active foobar-lynis.timer')).toBe('active\n')
      // A change by foobar on web1 (a kernel setting put back)...
      await sshOk('web1', 'sudo sysctl -qw net.ipv4.conf.all.send_redirects=1')
      const p = foobar(['provision', '-i', LAB_INVENTORY, '--limit', 'web1', '--yes', '--json'])
      expect(p.code, p.stderr).toBe(0)
      expect(json(p.stdout).summary).toMatchObject({changed: 1})
      const {lastApply} = await lynisStamps('web1')
      // ...after which web1 holds a complete report from a run that started before it: a score of 99 verify must not use.
      const stale = `hardening_index=99\nfoobar_started=${lastApply - 300}\nfoobar_finished=${lastApply - 5}\n`
      await sshOk('web1', `sudo -n sh -c 'mkdir -p /var/lib/foobar/lynis && printf "${stale}" > /var/lib/foobar/lynis/report.dat'`)
      expect((await lynisStamps('web1')).started).toBe(lastApply - 300)

      // Lynis on web1 only: on this 2-core machine three hosts at once take three times as long as one (~7 min of CI
      // for the same assertions); the demo runs it on every host.
      const t0 = Date.now()
      const v = verify(['--limit', 'web1'])
      console.log(`verify with Lynis on web1: ${((Date.now() - t0) / 1000).toFixed(0)} s`)
      const lynis = v.checks.filter((c) => c.check === 'lynis')
      expect(
        lynis.map((c) => c.host),
        v.raw,
      ).toEqual(['web1'])
      for (const c of lynis) console.log(`${c.host} lynis: ${c.detail}`)
      for (const c of lynis) {
        expect(c, v.raw).toMatchObject({
          ok: true,
          detail: expect.stringMatching(/^hardening index \d+ \(minimum 80; (report from \d+ (s|min|h) ago|ran now in \d+ s: .+)\)$/),
        })
      }
      // A bare Debian 12 lab host scores 59; the target is 85.
      for (const c of lynis) expect(Number(/index (\d+)/.exec(c.detail)![1]), `${c.host}: ${c.detail}`).toBeGreaterThanOrEqual(85)
      const web1 = lynis.find((c) => c.host === 'web1')!
      expect(web1.detail).toMatch(/; ran now in \d+ s: the last report .* is older than foobar's last change/)
      expect(web1.detail).not.toMatch(/index 99/)
      // And the score it gave is of a run that started after the change.
      expect((await lynisStamps('web1')).started!).toBeGreaterThan(lastApply)

      const t1 = Date.now()
      const warm = verify(['--limit', 'web1'])
      console.log(`verify --limit web1 reading the report: ${((Date.now() - t1) / 1000).toFixed(1)} s`)
      const check = warm.checks.find((c) => c.check === 'lynis')
      expect(check, warm.raw).toMatchObject({ok: true, detail: expect.stringMatching(/; report from \d+ (s|min) ago\)$/)})
      // The score of the run above, not another.
      expect(/index (\d+)/.exec(check!.detail)?.[1]).toBe(/index (\d+)/.exec(web1.detail)?.[1])
      expect(warm.code, warm.raw).toBe(0)
      // --lynis-now (a run now, whatever the report) is covered by the unit suite (verify.test.ts): a Lynis run less here.
      for (const h of HOSTS) expect(await sshOk(h, 'systemctl --failed --no-legend --plain'), h).toBe('')
    },
    40 * 60_000,
  )
})
