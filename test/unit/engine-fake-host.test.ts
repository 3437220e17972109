/*
 * The fake host behind the transport seam (test/unit/support/fake-host.ts) that the engine tests run against: its
 * scripts cannot touch this machine, file contents arrive byte for byte, and the scripting (handlers, dropped
 * connections, refused connections, copies) does what the tests rely on.
 */
import {existsSync} from 'node:fs'
import {afterAll, describe, expect, test} from 'vitest'
import {writeFileScript} from '../../src/engine/apply.js'
import {file} from '../../src/engine/contract.js'
import {ConnectionLost, FakeHost, fakeTransport, testInventory} from './support/fake-host.js'

const inv = testInventory(['web1 10.77.0.12 web'])
const web1 = inv.hosts[0]!
const made: FakeHost[] = []
afterAll(() => made.forEach((h) => h.cleanup()))
const fake = (o?: ConstructorParameters<typeof FakeHost>[1]) => {
  const h = new FakeHost(web1, o)
  made.push(h)
  return h
}

describe('the fake host', () => {
  test("absolute paths land in the host's root, and its answers name the host's paths", async () => {
    const h = fake()
    const r = await h.run(
      'mkdir -p /etc/foobar-fake-test && echo hi > /etc/foobar-fake-test/x && cat /etc/foobar-fake-test/x && ls -d /etc/foobar-fake-test /nonexistent-dir',
      {check: false},
    )
    expect(r.stdout).toBe('hi\n/etc/foobar-fake-test\n')
    expect(r.stderr).toContain('/nonexistent-dir')
    expect(r.stderr).not.toContain(h.root)
    expect(h.file('/etc/foobar-fake-test/x')).toBe('hi\n')
    expect(existsSync('/etc/foobar-fake-test')).toBe(false)
  })

  test('only stubs and harmless tools are on PATH; as root, scripts run as nobody', async () => {
    const h = fake()
    for (const cmd of ['mysql -e "select 1"', 'nft list ruleset', 'sudo true', 'reboot', 'useradd x']) {
      const r = await h.run(cmd, {check: false})
      expect(r.code, cmd).toBe(127)
    }
    // iptables is a stub that lists chains (-S) and does nothing else.
    expect((await h.run('iptables -F', {check: false})).stderr).toMatch(/fake: unsupported/)
    expect((await h.run('command -v systemctl')).stdout).toMatch(/\/stubs\/systemctl\n$/)
    expect((await h.run('id -u')).stdout.trim()).toBe(String(process.getuid?.() === 0 ? 65534 : process.getuid?.()))
  })

  test("a file's content arrives byte for byte (paths in it are not rewritten); other stdin is", async () => {
    const h = fake()
    const content = 'include /etc/nginx/conf.d/*.conf;\nno newline at the end ✓'
    const r = await h.run(writeFileScript(file('/etc/nginx/nginx.conf', content)), {stdin: content})
    expect(r.code, r.stderr).toBe(0)
    expect(h.file('/etc/nginx/nginx.conf')).toBe(content)
    await h.run('cat > /var/lib/script.sh', {stdin: 'rm -f /etc/nginx/nginx.conf\n'})
    await h.run('/bin/sh /var/lib/script.sh')
    expect(h.exists('/etc/nginx/nginx.conf')).toBe(false)
  })

  test('owners set by chown are what stat reports, also in a copy; a copy changes independently', async () => {
    const h = fake()
    await h.run('touch /etc/a && chmod 640 /etc/a && chown www-data:adm /etc/a')
    expect((await h.run("stat -c '%a %U %G' /etc/a")).stdout).toBe('640 www-data adm\n')
    expect(h.owner('/etc/a')).toBe('www-data:adm')
    const c = h.clone()
    made.push(c)
    expect(c.owner('/etc/a')).toBe('www-data:adm')
    expect((await c.run("stat -c '%a %U %G' /etc/a")).stdout).toBe('640 www-data adm\n')
    await c.run('rm /etc/a && systemctl stop ssh')
    expect(h.exists('/etc/a')).toBe(true)
    expect(h.unit('ssh').active).toBe('active')
    expect(c.unit('ssh').active).toBe('inactive')
  })

  test('handlers: one that answers nothing lets the command run; the latest that answers wins (the earlier are not asked)', async () => {
    const h = fake()
    const seen: string[] = []
    h.on(/^echo /, (c) => {
      seen.push(c.script)
    })
    expect((await h.run('echo real')).stdout).toBe('real\n')
    const off = h.on('echo', () => ({code: 3, stderr: 'scripted\n'}))
    expect(await h.run('echo real', {check: false})).toEqual({code: 3, stdout: '', stderr: 'scripted\n'})
    await expect(h.run('echo real')).rejects.toThrow('web1: `echo real` failed (exit 3): scripted')
    off()
    expect((await h.run('echo real')).stdout).toBe('real\n')
    expect(seen).toEqual(['echo real', 'echo real'])
  })

  test('a dropped connection: the command ran, it and every later one throw until a new connection', async () => {
    const h = fake()
    const transport = fakeTransport([h])
    h.dropAfter(/^touch /)
    await expect(h.run('touch /etc/dropped')).rejects.toBeInstanceOf(ConnectionLost)
    expect(h.exists('/etc/dropped')).toBe(true)
    await expect(h.run('true')).rejects.toThrow('web1: connection lost (read ECONNRESET)')
    const again = await transport.open(web1)
    expect((await again.run('echo back')).stdout).toBe('back\n')
    h.refusing = 'connect ECONNREFUSED 10.77.0.12:22'
    await expect(transport.open(web1)).rejects.toThrow('web1: cannot connect to deploy@10.77.0.12:22: connect ECONNREFUSED 10.77.0.12:22')
    expect(transport.opened).toEqual(['web1', 'web1'])
  })

  test('a host without a shell answers every unscripted command with its default answer', async () => {
    const h = fake({shell: false, answer: {code: 0, stdout: 'ok\n'}})
    expect(await h.run('rm -rf /')).toEqual({code: 0, stdout: 'ok\n', stderr: ''})
    expect(h.log.map((c) => [c.script, c.root])).toEqual([['rm -rf /', true]])
  })
})
