/*
 * Connection.open against real OpenSSH servers on 127.0.0.1 (test/unit/support/sshd.ts):
 * - a jump host's key is checked like any host's: known_hosts (the inventory's and ~/.ssh/known_hosts), trust on
 *   first use only with --accept-new-host-keys, a changed key refused, the error naming the jump host;
 * - a host reached only through ssh_config (HostName, Port, User, IdentityFile), as `ssh -G` resolves it, with the
 *   inventory's explicit settings winning (`user: root` and `port: 22` included; host level over top level), what
 *   it leaves unset taken from ssh_config; a ProxyJump chain from ssh_config;
 * - a private key others can read is a warning on the connection.
 * Needs sshd and root: skipped with a message otherwise, failing under CI=true.
 */
import {chmodSync, copyFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, test, type TestContext} from 'vitest'
import {Connection, HostKeyError, resolveRoute} from '../../src/remote/connection.js'
import {type Host, parseInventory} from '../../src/inventory/index.js'
import {exitCodeOf} from '../../src/util/errors.js'
import {type SshdLab, type TestSshd, sshdLab, sshdUnavailable} from './support/sshd.js'
import {testInventory} from './support/fake-host.js'

const CI = process.env.CI === 'true'
const unavailable = sshdUnavailable()
let lab: SshdLab
let jump: TestSshd
let target: TestSshd
/** A second host key for the jump host's address: what a man in the middle would present. */
let otherKey: TestSshd

beforeAll(async () => {
  if (unavailable) return
  lab = sshdLab()
  ;[jump, target, otherKey] = await Promise.all([lab.start('jump'), lab.start('target'), lab.start('other')])
}, 30_000)
afterAll(() => lab?.cleanup())

function need(ctx: TestContext): void {
  if (!unavailable) return
  if (CI) throw new Error(`CI=true: ${unavailable}`)
  console.warn(`SKIP ${ctx.task.name}: ${unavailable}`)
  ctx.skip(unavailable)
}

let files = 0
/** A known_hosts file with these lines. */
function knownHosts(lines: string[]): string {
  const f = join(lab.dir, `known_hosts_${++files}`)
  writeFileSync(f, lines.map((l) => `${l}\n`).join(''), {mode: 0o600})
  return f
}
function sshConfig(text: string): string {
  const f = join(lab.dir, `ssh_config_${++files}`)
  writeFileSync(f, text)
  return f
}
const line = (port: number, key: string) => `[127.0.0.1]:${port} ${key}`

/** A host of a parsed inventory with its ssh settings replaced (user and port unset unless given, as in the model). */
function host(name: string, address: string, ssh: Partial<Host['ssh']>): Host {
  // The inventory refuses loopback addresses: the host is parsed with another and pointed at this one.
  const h = testInventory([`${name} 10.77.0.50 web`]).hosts[0]!
  return {
    ...h,
    address,
    ssh: {
      ...h.ssh,
      user: undefined,
      port: undefined,
      identityFile: undefined,
      jumpHost: undefined,
      knownHosts: undefined,
      connectTimeout: 5,
      ...ssh,
    },
  }
}

/** The one host of an inventory file with this top-level `ssh:` and host `ssh:` (flow mappings), parsed for real. */
function inventoryHost(name: string, top: string, own: string): Host {
  const text = [
    'site: {domain: www.foobar.test, email: admin@foobar.test}',
    `ssh: {${top}}`,
    'firewall: {admin_cidrs: [192.0.2.1/32]}',
    'hosts:',
    // A documentation address: only ssh_config's HostName leads to the test's sshd.
    `  - {name: ${name}, address: 192.0.2.20, roles: [web], ssh: {${own}}}`,
    '',
  ].join('\n')
  return parseInventory(text, join(lab.dir, 'inventory.yml')).hosts[0]!
}

const open = (h: Host, o: Parameters<typeof Connection.open>[1] = {}) => Connection.open(h, {sshConfigFile: sshConfig(''), ...o})

describe('the jump host: its key is verified like any host', () => {
  const viaJump = (kh: string) =>
    host('web1', '127.0.0.1', {port: target.port, identityFile: lab.clientKey, knownHosts: kh, jumpHost: `root@127.0.0.1:${jump.port}`})

  test('an unknown jump host key is refused (the target known): HostKeyError naming the jump host, exit 2', async (ctx) => {
    need(ctx)
    const kh = knownHosts([line(target.port, target.hostKey)])
    const error = await open(viaJump(kh)).then(
      (c) => (c.close(), undefined),
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(HostKeyError)
    expect((error as Error).message).toMatch(/^web1: jump host 127\.0\.0\.1: unknown host key ssh-ed25519 SHA256:/)
    expect(exitCodeOf(error)).toBe(2)
    // Nothing was recorded without the flag.
    expect(readFileSync(kh, 'utf8')).toBe(`${line(target.port, target.hostKey)}\n`)
  })

  test('a changed jump host key is refused, even with --accept-new-host-keys', async (ctx) => {
    need(ctx)
    const kh = knownHosts([line(jump.port, otherKey.hostKey), line(target.port, target.hostKey)])
    await expect(open(viaJump(kh), {acceptNewHostKeys: true})).rejects.toThrow(/^web1: jump host 127\.0\.0\.1: HOST KEY CHANGED/)
  })

  test('--accept-new-host-keys records the jump host (trust on first use); then it is trusted without the flag', async (ctx) => {
    need(ctx)
    const kh = knownHosts([line(target.port, target.hostKey)])
    const c = await open(viaJump(kh), {acceptNewHostKeys: true})
    try {
      expect((await c.run('echo through-the-jump-host')).stdout).toBe('through-the-jump-host\n')
    } finally {
      c.close()
    }
    expect(readFileSync(kh, 'utf8')).toContain(`${line(jump.port, jump.hostKey)}\n`)
    const again = await open(viaJump(kh))
    again.close()
  })

  test('the target behind a known jump host is still checked', async (ctx) => {
    need(ctx)
    const kh = knownHosts([line(jump.port, jump.hostKey)])
    await expect(open(viaJump(kh))).rejects.toThrow(/^web1: unknown host key/)
  })
})

/** The target sshd logged a line matching `pattern` (from offset `from` on): what it logs arrives after the connection returns. */
async function expectLogged(pattern: RegExp, from = 0) {
  expect(await target.logged(pattern, from)).toMatch(pattern)
}

describe('~/.ssh/config as OpenSSH resolves it', () => {
  test('a host reached only through ssh_config: HostName, Port, User, IdentityFile (the inventory says none of them)', async (ctx) => {
    need(ctx)
    const cfg = sshConfig(
      [`Host web7`, `  HostName 127.0.0.1`, `  Port ${target.port}`, `  User nobody`, `  IdentityFile ${lab.clientKey}`, ''].join('\n'),
    )
    // The inventory's address is a documentation address nobody answers on; port and user are foobar's defaults.
    const h = host('web7', '192.0.2.7', {knownHosts: knownHosts([line(target.port, target.hostKey)]), connectTimeout: 3})
    const c = await Connection.open(h, {sshConfigFile: cfg})
    c.close()
    await expectLogged(/Accepted publickey for nobody from 127\.0\.0\.1/)
  })

  test('Include and Match, resolved by ssh -G; an inventory user and port that are set win', async (ctx) => {
    need(ctx)
    const inc = sshConfig(`Host web8\n  HostName 127.0.0.1\n  User nobody\n`)
    const cfg = sshConfig(
      [`Include ${inc}`, `Match originalhost web8`, `  Port ${target.port}`, `  IdentityFile ${lab.clientKey}`, ''].join('\n'),
    )
    const kh = knownHosts([line(target.port, target.hostKey)])
    const before = target.log().length
    const c = await Connection.open(host('web8', '192.0.2.8', {knownHosts: kh, connectTimeout: 3}), {sshConfigFile: cfg})
    c.close()
    await expectLogged(/Accepted publickey for nobody/, before)
    // ssh_config says nobody and the target's port; the inventory's deploy and port win.
    const kh2 = knownHosts([line(target.port, target.hostKey), line(jump.port, jump.hostKey)])
    const wrongPort = host('web8', '192.0.2.8', {knownHosts: kh2, port: jump.port, user: 'deploy', connectTimeout: 3})
    await expect(Connection.open(wrongPort, {sshConfigFile: cfg})).rejects.toThrow(`deploy@127.0.0.1:${jump.port}`)
  })

  test('explicit ssh.port and ssh.user: root (host level over top level) beat ssh_config Port and User', async (ctx) => {
    need(ctx)
    // ssh_config sends web10 to the jump server's port as nobody; only the target's key is known.
    const cfg = sshConfig(
      [`Host web10`, `  HostName 127.0.0.1`, `  Port ${jump.port}`, `  User nobody`, `  IdentityFile ${lab.clientKey}`, ''].join('\n'),
    )
    const kh = knownHosts([line(target.port, target.hostKey)])
    const h = inventoryHost(
      'web10',
      `user: nobody, port: ${jump.port}, known_hosts: ${kh}, connect_timeout: 3`,
      `user: root, port: ${target.port}`,
    )
    expect([h.ssh.user, h.ssh.port]).toEqual(['root', target.port])
    const before = target.log().length
    const c = await Connection.open(h, {sshConfigFile: cfg})
    try {
      expect(c.user).toBe('root')
      expect((await c.run('id -un')).stdout).toBe('root\n')
    } finally {
      c.close()
    }
    await expectLogged(/Accepted publickey for root from 127\.0\.0\.1/, before)
  })

  test('what the inventory leaves unset comes from ssh_config (User, Port)', async (ctx) => {
    need(ctx)
    const cfg = sshConfig(
      [`Host web11`, `  HostName 127.0.0.1`, `  Port ${target.port}`, `  User nobody`, `  IdentityFile ${lab.clientKey}`, ''].join('\n'),
    )
    const kh = knownHosts([line(target.port, target.hostKey)])
    const h = inventoryHost('web11', `known_hosts: ${kh}, connect_timeout: 3`, 'sudo: true')
    expect([h.ssh.user, h.ssh.port]).toEqual([undefined, undefined])
    const before = target.log().length
    const c = await Connection.open(h, {sshConfigFile: cfg})
    c.close()
    // The user it logged in as decides `sudo -n` for commands as root (nobody's shell runs none here: not asserted).
    expect(c.user).toBe('nobody')
    await expectLogged(/Accepted publickey for nobody from 127\.0\.0\.1/, before)
  })

  test('the precedence per setting: inventory (root and 22 included) > ssh_config > foobar default', (ctx) => {
    need(ctx)
    const cfg = sshConfig([`Host web12`, `  HostName 127.0.0.1`, `  Port 2299`, `  User opsuser`, ''].join('\n'))
    const o = {sshConfigFile: cfg}
    const target = (ssh: Partial<Host['ssh']>) => resolveRoute(host('web12', '192.0.2.12', ssh), o).target
    expect(target({user: 'root', port: 22})).toMatchObject({hostName: '127.0.0.1', user: 'root', port: 22})
    expect(target({})).toMatchObject({hostName: '127.0.0.1', user: 'opsuser', port: 2299})
    expect(target({port: 22})).toMatchObject({user: 'opsuser', port: 22})
    // Nothing in either: foobar's defaults; no HostName: the inventory's address.
    expect(resolveRoute(host('web13', '192.0.2.13', {}), o).target).toMatchObject({hostName: '192.0.2.13', user: 'root', port: 22})
  })

  test('a ProxyJump chain from ssh_config (two hops), each hop resolved and checked', async (ctx) => {
    need(ctx)
    const cfg = sshConfig(
      [
        `Host bastion1`,
        `  HostName 127.0.0.1`,
        `  Port ${jump.port}`,
        `Host bastion2`,
        `  HostName 127.0.0.1`,
        `  Port ${otherKey.port}`,
        `Host web9`,
        `  HostName 127.0.0.1`,
        `  Port ${target.port}`,
        `  ProxyJump bastion1,bastion2`,
        '',
      ].join('\n'),
    )
    const all = [line(jump.port, jump.hostKey), line(otherKey.port, otherKey.hostKey), line(target.port, target.hostKey)]
    const h = (kh: string) => host('web9', '192.0.2.9', {knownHosts: kh, identityFile: lab.clientKey, connectTimeout: 3})
    const c = await Connection.open(h(knownHosts(all)), {sshConfigFile: cfg})
    try {
      expect((await c.run('echo two-hops')).stdout).toBe('two-hops\n')
    } finally {
      c.close()
    }
    await expect(Connection.open(h(knownHosts([all[0]!, all[2]!])), {sshConfigFile: cfg})).rejects.toThrow(
      /^web9: jump host bastion2: unknown host key/,
    )
  })
})

describe('the identity file', () => {
  test('a private key that others can read connects, with a warning on the connection', async (ctx) => {
    need(ctx)
    const open644 = join(lab.dir, 'client_key_644')
    copyFileSync(lab.clientKey, open644)
    chmodSync(open644, 0o644)
    const h = host('web1', '127.0.0.1', {
      port: target.port,
      identityFile: open644,
      knownHosts: knownHosts([line(target.port, target.hostKey)]),
    })
    const c = await open(h)
    c.close()
    expect(c.warnings).toEqual([`ssh.identity_file (host web1): ${open644} is open to every user (mode 0644); chmod 600 ${open644}`])
    const c600 = await open({...h, ssh: {...h.ssh, identityFile: lab.clientKey}})
    c600.close()
    expect(c600.warnings).toEqual([])
  })
})

/** web1 on the target sshd: its host key known, the lab's client key. */
function webOnTarget(): Host {
  return host('web1', '127.0.0.1', {
    port: target.port,
    identityFile: lab.clientKey,
    knownHosts: knownHosts([line(target.port, target.hostKey)]),
  })
}

describe('a remote command that hangs', () => {
  test('ends at its time limit with code 124 and says so; the connection keeps working', async (ctx) => {
    need(ctx)
    const h = webOnTarget()
    const c = await open(h)
    try {
      const t0 = Date.now()
      const r = await c.run('sleep 30', {check: false, timeoutMs: 500, root: false})
      expect(Date.now() - t0).toBeLessThan(10_000)
      expect(r.code).toBe(124)
      expect(r.stderr).toMatch(/timed out after 0\.5 s \(foobar stopped waiting; the command may still be running on web1\)/)
      expect((await c.run('echo still here', {root: false})).stdout).toBe('still here\n')
    } finally {
      c.close()
    }
  })
})

describe("the address the host sees foobar's connection come from", () => {
  test('learned by a command run with learnClient (sshd sets SSH_CONNECTION): the same address as asked alone', async (ctx) => {
    need(ctx)
    const h = webOnTarget()
    const [learning, asking] = [await open(h), await open(h)]
    try {
      const r = await learning.run('echo "args: $#"', {learnClient: true})
      expect(r.stdout).toBe('args: 0\n')
      expect(await learning.clientAddress()).toBe('127.0.0.1')
      expect(await asking.clientAddress()).toBe('127.0.0.1')
    } finally {
      learning.close()
      asking.close()
    }
  })
})
