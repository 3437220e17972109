/*
 * The rendered sshd drop-in against the real OpenSSH 9.2 of Debian 12: `sshd -t` on the full configuration (the
 * drop-in first, then Debian's sshd_config, as on a host), then a throwaway sshd on 127.0.0.1 that ssh-audit
 * grades and that foobar's own SSH library (ssh2) completes a key exchange with. Nothing touches the machine's
 * own sshd; the test sshd is killed at the end.
 *
 * Missing tools (or not root: sshd needs its privilege-separation directory) skip with a message, except under
 * CI=true, where they fail: scripts/setup.sh installs openssh-server and ssh-audit.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Client} from 'ssh2'
import {afterAll, describe, expect, test, type TestContext} from 'vitest'
import {desiredState} from '../../src/components/index.js'
import {parseSshAudit} from '../../src/components/hardening/audit.js'
import {SSHD_DROPIN} from '../../src/components/hardening/index.js'
import {loadExample} from './support/render.js'

const CI = process.env.CI === 'true'
const TMP = mkdtempSync(join(tmpdir(), 'foobar-sshd-'))
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) c.kill()
  rmSync(TMP, {recursive: true, force: true, maxRetries: 5})
})

function which(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    try {
      accessSync(join(dir, bin), constants.X_OK)
      return join(dir, bin)
    } catch {
      // not here
    }
  }
  return undefined
}

function need(ctx: TestContext, bins: string[]): Record<string, string> {
  const found = Object.fromEntries(bins.map((b) => [b, which(b)]))
  const problems = [...bins.filter((b) => !found[b]).map((b) => `${b} not installed`), ...(process.getuid?.() === 0 ? [] : ['needs root'])]
  if (problems.length) {
    const message = `${problems.join('; ')} (apt-get install openssh-server ssh-audit; see scripts/setup.sh)`
    if (CI) throw new Error(`CI=true: ${message}`)
    console.warn(`SKIP ${ctx.task.name}: ${message}`)
    ctx.skip(message)
  }
  return found as Record<string, string>
}

/** The lab's drop-in with its host keys swapped for throwaway ones, and a wrapper that reads it as a host would. */
function config(extra: string[]): string {
  const inv = loadExample('lab')
  const dropIn = desiredState(inv, inv.hosts[0]!).files.find((f) => f.path === SSHD_DROPIN)!.content
  for (const type of ['ed25519', 'rsa']) {
    const key = join(TMP, `host_${type}`)
    if (!existsSync(key)) spawnSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '3072'] : []), '-N', '', '-f', key])
  }
  writeFileSync(join(TMP, '50-foobar.conf'), dropIn.replace(/\/etc\/ssh\/ssh_host_(\w+)_key/g, `${TMP}/host_$1`))
  const main = existsSync('/etc/ssh/sshd_config') ? ['Include /etc/ssh/sshd_config'] : []
  const wrapper = join(TMP, 'sshd_config')
  writeFileSync(wrapper, [...extra, `Include ${TMP}/50-foobar.conf`, ...main, ''].join('\n'))
  return wrapper
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number}
      s.close(() => resolve(port))
    })
  })

describe('the sshd drop-in against the real OpenSSH', () => {
  test("sshd -t accepts the full configuration: the drop-in, then Debian's sshd_config", (ctx) => {
    const {sshd} = need(ctx, ['sshd'])
    // sshd -t wants its privilege-separation directory (systemd makes it when sshd runs; nothing has on a fresh machine).
    mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
    const r = spawnSync(sshd, ['-t', '-f', config([])], {encoding: 'utf8'})
    expect(r.status, r.stderr).toBe(0)
    const effective = spawnSync(sshd, ['-T', '-f', config([])], {encoding: 'utf8'}).stdout
    expect(effective).toMatch(/^permitrootlogin no$/m)
    expect(effective).toMatch(/^passwordauthentication no$/m)
    expect(effective).toMatch(/^maxsessions 2$/m)
    expect(effective).toMatch(/^clientalivecountmax 2$/m)
    // Debian's own sshd_config says X11Forwarding yes: the drop-in comes first, so its value wins.
    expect(effective).toMatch(/^x11forwarding no$/m)
  })

  test("ssh-audit: 0 fail, 0 warn; foobar's SSH library still completes the key exchange", async (ctx) => {
    const {sshd} = need(ctx, ['sshd', 'ssh-audit'])
    mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
    const port = await freePort()
    const wrapper = config([`Port ${port}`, 'ListenAddress 127.0.0.1', `PidFile ${TMP}/sshd.pid`])
    const child = spawn(sshd, ['-D', '-e', '-f', wrapper], {stdio: ['ignore', 'ignore', 'pipe']})
    children.push(child)
    let log = ''
    child.stderr!.on('data', (d) => (log += d))
    await new Promise((r) => setTimeout(r, 500))
    const audit = spawnSync('ssh-audit', ['-n', '-p', String(port), '127.0.0.1'], {encoding: 'utf8', timeout: 60_000})
    const r = parseSshAudit(audit.stdout)
    expect(r.banner, `${audit.stdout}\n${log}`).toMatch(/OpenSSH_9/)
    expect({fail: r.fail, warn: r.warn}).toEqual({fail: [], warn: []})

    // A handshake up to authentication: the algorithms match; the refused user is the expected end.
    const outcome = await new Promise<string>((resolve) => {
      const c = new Client()
      c.on('handshake', (n) => resolve(`handshake ${n.kex} ${n.serverHostKey} ${n.cs.cipher}`))
      c.on('error', (e) => resolve(`error ${e.message}`))
      c.connect({host: '127.0.0.1', port, username: 'nobody-here', password: 'x', readyTimeout: 10_000})
    })
    expect(outcome).toMatch(/^handshake curve25519-sha256(@libssh\.org)? ssh-ed25519 /)
  })
})
