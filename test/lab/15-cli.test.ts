/**
 * The CLI for people against the lab's real hosts (issue 21): `foobar exec` (item 5) runs a command on the hosts a
 * --limit pattern selects, as root through sudo or as the login user, each host's output and exit status; `foobar
 * init` (item 1) writes an inventory from flags, records the hosts' keys it scanned, and that inventory plans.
 */
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {envelope, foobar} from './support/cli.js'
import {LAB_INVENTORY, labIsUp} from './support/lab.js'

interface Res {
  host: string
  code?: number
  stdout: string
  stderr: string
}

describe.skipIf(!labIsUp())('exec', () => {
  test("--limit 'web*': every web server answers, as root through sudo and as the login user", () => {
    const root = foobar(['exec', '-i', LAB_INVENTORY, '--limit', 'web*', '--json', '--', 'id', '-un;', 'hostname'])
    expect(root.code, root.stdout + root.stderr).toBe(0)
    const hosts = envelope<{hosts: Res[]}>(root.stdout).result!.hosts
    expect(hosts.map((h) => [h.host, h.code, h.stdout])).toEqual([
      ['web1', 0, 'root\nweb1\n'],
      ['web2', 0, 'root\nweb2\n'],
    ])
    const user = foobar(['exec', '-i', LAB_INVENTORY, '--limit', 'lb1', '--no-root', '--', 'id -un'])
    expect(user.code, user.stderr).toBe(0)
    expect(user.stdout).toMatch(/^== lb1: exit 0 \(\d+\.\d s\)\ndeploy\n$/)
  })

  test('a command that fails on one host: exit 3, that host and its status named, the others’ output kept', () => {
    const r = foobar(['exec', '-i', LAB_INVENTORY, '--json', '--', 'test "$(hostname)" != web2 || { echo no >&2; exit 7; }; echo ok'])
    expect(r.code, r.stdout + r.stderr).toBe(3)
    const env = envelope<{hosts: Res[]}>(r.stdout)
    expect(env.result!.hosts.map((h) => [h.host, h.code])).toEqual([
      ['lb1', 0],
      ['web1', 0],
      ['web2', 7],
    ])
    expect(env.result!.hosts[2]!.stderr).toBe('no\n')
    expect(env.error!.failed).toEqual({web2: 'exit 7'})
  })
})

describe.skipIf(!labIsUp())('init', () => {
  test('init --non-interactive --accept-host-keys: the keys recorded are the ones plan then verifies; the inventory plans', () => {
    const dir = mkdtempSync(join(tmpdir(), 'foobar-init-lab-'))
    const out = join(dir, 'fleet.yml')
    const knownHosts = join(dir, 'known_hosts')
    const r = foobar([
      'init',
      '--non-interactive',
      '--accept-host-keys',
      '--out',
      out,
      '--json',
      '--domain',
      'www.foobar.test',
      '--email',
      'admin@foobar.test',
      '--admin-cidr',
      '10.77.0.1/32',
      '--tls',
      'self-signed',
      '--ssh-user',
      'deploy',
      '--identity-file',
      '/var/lib/foobar-lab/ssh/id_ed25519',
      '--known-hosts',
      knownHosts,
      '--host',
      'lb1=10.77.0.11:lb',
      '--host',
      'web1=10.77.0.12:web,db',
      '--host',
      'web2=10.77.0.13:web,db',
    ])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const keys = envelope<{hostKeys: Array<{host: string; recorded: boolean; fingerprints: string[]}>}>(r.stdout).result!.hostKeys
    expect(keys.map((k) => [k.host, k.recorded, k.fingerprints.length > 0])).toEqual([
      ['lb1', true, true],
      ['web1', true, true],
      ['web2', true, true],
    ])
    // The same keys the lab recorded when it booted the hosts.
    const lab = readFileSync('/var/lib/foobar-lab/known_hosts', 'utf8')
    for (const line of readFileSync(knownHosts, 'utf8').trim().split('\n')) expect(lab).toContain(line)
    // No --accept-new-host-keys: plan connects only because init recorded the keys.
    const plan = foobar(['plan', '-i', out], {FOOBAR_REPL_PASSWORD: 'init-test-password'})
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
    expect(plan.stdout).toMatch(/== lb1: \d+ changes/)
  })
})
