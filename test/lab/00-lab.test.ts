import {execFile} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {Resolver} from 'node:dns/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {beforeAll, describe, expect, it} from 'vitest'
import {up, type LabHost, type LabStatus} from '../../src/lab/index.js'
import {waitSsh} from '../../src/lab/hosts.js'
import {json} from './support/cli.js'
import {APT, URLS, labHosts, labIsUp, labSpec, paths, pebble, ssh, sshOk} from './support/lab.js'

const run = promisify(execFile)

describe.skipIf(!labIsUp())('the lab', () => {
  let hosts: LabHost[]
  beforeAll(async () => {
    hosts = await labHosts()
  })

  it('boots the lab inventory: lb1, web1, web2', () => {
    expect(hosts.map((h) => `${h.name} ${h.address}`)).toEqual(['lb1 10.77.0.11', 'web1 10.77.0.12', 'web2 10.77.0.13'])
  })

  it('lets deploy in on every host with the lab key and a verified host key, and deploy can sudo', async () => {
    const knownHosts = await readFile(paths.knownHosts, 'utf8')
    for (const h of hosts) {
      expect(knownHosts).toMatch(new RegExp(`^${h.address.replace(/\./g, '\\.')} ssh-ed25519 AAAA`, 'm'))
      expect(await sshOk(h, 'id -un && sudo -n true && echo sudo-ok')).toBe('deploy\nsudo-ok\n')
    }
  })

  it('gives every host its own name, machine-id and SSH host keys, and no default route', async () => {
    const seen = await Promise.all(
      hosts.map((h) => sshOk(h, 'hostname; cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub; ip route show default')),
    )
    const [names, ids, keys] = [0, 1, 2].map((i) => seen.map((s) => s.split('\n')[i]))
    expect(names).toEqual(hosts.map((h) => h.name))
    expect(new Set(ids).size).toBe(hosts.length)
    expect(new Set(keys).size).toBe(hosts.length)
    for (const s of seen) expect(s.split('\n')[3]).toBe('')
  })

  it('refuses a host whose key does not match known_hosts, and a host not in it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'foobar-lab-'))
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'other')])
      const [kind, blob] = (await readFile(path.join(dir, 'other.pub'), 'utf8')).split(' ')
      const wrong = path.join(dir, 'wrong_known_hosts')
      await writeFile(wrong, `${hosts[0].address} ${kind} ${blob}\n`)
      const mismatch = await ssh(hosts[0], 'true', {knownHosts: wrong})
      expect(mismatch.code).toBe(255)
      expect(mismatch.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)

      const empty = path.join(dir, 'empty_known_hosts')
      await writeFile(empty, '')
      const unknown = await ssh(hosts[0], 'true', {knownHosts: empty})
      expect(unknown.code).toBe(255)
      expect(unknown.stderr).toMatch(/Host key verification failed/)
    } finally {
      await rm(dir, {recursive: true, force: true, maxRetries: 5})
    }
  })

  it('installs a package through the apt proxy, which allows only the Debian mirror', async () => {
    const host = hosts[hosts.length - 1]
    // Offline, apt-get update still exits 0: the warnings are the failure signal.
    const update = await sshOk(host, `${APT} update 2>&1`)
    expect(update).not.toMatch(/^(W: Failed to fetch|Err:)/m)
    await sshOk(host, `${APT} install -y --no-install-recommends sl 2>&1`)
    expect(await sshOk(host, "dpkg-query -W -f='${Status}' sl")).toBe('install ok installed')
    // Leave the host as bare as it was for the other lab tests.
    await sshOk(host, `${APT} purge -y sl 2>&1`)

    const elsewhere = await ssh(host, `curl -s -o /dev/null -w '%{http_code}' -x ${APT.match(/http:\/\/[\d.:]+/)![0]} http://example.com/`)
    expect(elsewhere.stdout).toBe('403')
  })

  it('runs pebble: the ACME directory answers over TLS trusted by the lab CA, and its root is published', async () => {
    const res = await pebble.get(pebble.directory)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({newAccount: expect.any(String), newOrder: expect.any(String)})
    expect(await readFile(pebble.rootsFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/)
  })

  it('resolves the site on the LB and every host by name in the lab DNS', async () => {
    const resolver = new Resolver({timeout: 2000, tries: 2})
    resolver.setServers([pebble.dnsServer])
    const spec = await labSpec()
    for (const name of [spec.domain, ...spec.aliases]) expect(await resolver.resolve4(name)).toEqual(['10.77.0.11'])
    for (const h of hosts) expect(await resolver.resolve4(`${h.name}.lab.foobar.test`)).toEqual([h.address])
  })

  it('boots a guest again after `systemctl reboot` in it', async () => {
    const host = hosts[hosts.length - 1]
    const before = await readFile(paths.host(host.name).nspawnPid, 'utf8')
    const bootId = await sshOk(host, 'cat /proc/sys/kernel/random/boot_id')
    await ssh(host, 'sudo systemctl reboot')
    const deadline = Date.now() + 60_000
    let after = ''
    while (Date.now() < deadline) {
      after = (await ssh(host, 'cat /proc/sys/kernel/random/boot_id', {timeoutMs: 10_000})).stdout
      if (after !== '' && after !== bootId) break
      await new Promise((r) => setTimeout(r, 500))
    }
    expect(after).not.toBe('')
    expect(after).not.toBe(bootId)
    expect(await readFile(paths.host(host.name).nspawnPid, 'utf8')).not.toBe(before)
  })

  it('says why a host is not ready: what sshd answered and what is pending inside the guest', async () => {
    const host = hosts[0]
    // /run/nologin is how a booting Debian refuses ordinary logins until systemd-user-sessions has run.
    await sshOk(host, 'echo "System is booting up." | sudo tee /run/nologin >/dev/null')
    try {
      // Long enough for a few refused logins on a loaded machine (one ssh round can take a second or two here).
      const error = await waitSsh(paths, host, 5000).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(error?.message).toMatch(new RegExp(`^${host.name}: sshd not ready after [\\d.]+ s: .*Connection closed by ${host.address}`))
      // The guest's own state, whatever it is (the reboot test just before may leave it starting or degraded: a unit
      // that hit the containers' 219/CGROUP), then what keeps logins out.
      expect(error?.message).toMatch(new RegExp(`inside ${host.name}: state: [a-z]+ \\| /run/nologin present`))
      expect(error?.message).toContain(`console (${paths.host(host.name).log}): `)
    } finally {
      await sshOk(host, 'rm -f /run/nologin', {user: 'root'})
    }
    await waitSsh(paths, host, 5000)
  })

  // Runs the built CLI: `npm test` builds dist/ first.
  it('`foobar lab status --json` shows every host running and reachable, and the services', async () => {
    const {stdout} = await run('node', ['bin/run.js', 'lab', 'status', '--json'])
    const status = json<LabStatus>(stdout)
    expect(status.up).toBe(true)
    expect(status.hosts.map((h) => [h.name, h.state, h.ssh])).toEqual(hosts.map((h) => [h.name, 'running', true]))
    expect(status.services.map((s) => [s.name, s.state])).toEqual([
      ['apt-cache', 'running'],
      ['pebble-challtestsrv', 'running'],
      ['pebble', 'running'],
    ])
  })

  it('`lab up` on a running lab does nothing', async () => {
    const pids = () => Promise.all(hosts.map((h) => readFile(paths.host(h.name).pid, 'utf8')))
    const before = await pids()
    const result = await up(await labSpec())
    expect(result.alreadyUp).toBe(true)
    expect(result.seconds).toBeLessThan(2)
    expect(await pids()).toEqual(before)
  })

  it('`lab up` on a lab whose pebble stopped starts pebble again and touches no host', async () => {
    const pids = () => Promise.all(hosts.map((h) => readFile(paths.host(h.name).pid, 'utf8')))
    const before = await pids()
    const pebblePid = Number(await readFile(path.join(paths.run, 'pebble.pid'), 'utf8'))
    process.kill(pebblePid, 'SIGKILL')
    await new Promise((r) => setTimeout(r, 500))
    const down = json<LabStatus>((await run('node', ['bin/run.js', 'lab', 'status', '--json']).catch((e) => e)).stdout)
    expect(down.services.find((s) => s.name === 'pebble')!.state).toBe('stopped')
    const {stdout} = await run('node', ['bin/run.js', 'lab', 'up'])
    expect(stdout).toContain('the lab is already up (3 hosts): started pebble again, the hosts untouched')
    expect(await pids()).toEqual(before)
    expect((await pebble.get(pebble.directory)).status).toBe(200)
  })

  it('`lab up --hosts 4` on the running lab boots extra1 beside the three, untouched; `lab up` again stops it, disk kept', async () => {
    const pids = () => Promise.all(hosts.map((h) => readFile(paths.host(h.name).pid, 'utf8')))
    const before = await pids()
    const dns = new Resolver()
    dns.setServers([`${URLS.dns}`])
    const grown = await run('node', ['bin/run.js', 'lab', 'up', '--hosts', '4'])
    expect(grown.stdout).toMatch(/the lab was up with other hosts: booted extra1 in [\d.]+ s, the others untouched/)
    expect(await pids()).toEqual(before)
    expect(await sshOk('extra1', 'hostname; getent hosts web1')).toBe('extra1\n10.77.0.12      web1 web1.lab.foobar.test\n')
    expect(await sshOk('web1', 'getent hosts extra1')).toBe('10.77.0.14      extra1 extra1.lab.foobar.test\n')
    expect(await dns.resolve4('extra1.lab.foobar.test')).toEqual(['10.77.0.14'])
    expect(await dns.resolve4('www.foobar.test')).toEqual(['10.77.0.11'])
    const shrunk = await run('node', ['bin/run.js', 'lab', 'up'])
    expect(shrunk.stdout).toMatch(/the lab was up with other hosts: stopped extra1 \(disk kept\) in [\d.]+ s, the others untouched/)
    expect(await pids()).toEqual(before)
    expect((await labHosts()).map((h) => h.name)).toEqual(['lb1', 'web1', 'web2'])
    expect((await sshOk('web1', 'getent hosts extra1 || echo none')).trim()).toBe('none')
    await expect(dns.resolve4('extra1.lab.foobar.test')).rejects.toThrow()
    const status = json<LabStatus>((await run('node', ['bin/run.js', 'lab', 'status', '--json'])).stdout)
    expect(status.hosts.map((h) => h.name)).toEqual(['lb1', 'web1', 'web2'])
    expect(await readFile(paths.knownHosts, 'utf8')).not.toContain('10.77.0.14 ')
    // Its disk was kept (as by `lab down`); nothing of it is left for the files that follow.
    await rm(paths.host('extra1').dir, {recursive: true, force: true, maxRetries: 5})
  })

  it('`lab ssh HOST -- COMMAND` runs it there as deploy and exits with its status; lab status says how to enter a host', async () => {
    const r = await run('node', ['bin/run.js', 'lab', 'ssh', 'web1', '--', 'hostname; id -un; exit 7']).catch((e) => e)
    expect(r.code).toBe(7)
    expect(r.stdout).toBe('web1\ndeploy\n')
    const unknown = await run('node', ['bin/run.js', 'lab', 'ssh', 'web9']).catch((e) => e)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('no lab host named web9')
    const {stdout} = await run('node', ['bin/run.js', 'lab', 'status'])
    expect(stdout).toContain('enter a host: foobar lab ssh lb1 [-- COMMAND]')
  })
})
