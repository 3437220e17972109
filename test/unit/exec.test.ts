/**
 * `foobar exec` (issue 21, item 5): one command on the selected hosts, each host's output and exit status, a host
 * that cannot be reached or drops the connection reported as such while the others still answer.
 */
import {afterAll, describe, expect, test} from 'vitest'
import {execOnHosts} from '../../src/exec/index.js'
import {fakeFleet, testInventory} from './support/fake-host.js'
import {runCli} from './support/run-cli.js'

const inv = testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web', 'web2 10.77.0.13 web'])
const fleet = fakeFleet(inv)
afterAll(() => fleet.cleanup())

describe('execOnHosts', () => {
  test('each host: its output and exit status, in the hosts’ order; unreachable and dropped hosts say why', async () => {
    fleet.hosts.lb1!.refusing = 'Connection refused'
    fleet.hosts.web2!.command('whoami-ish', 'echo "on web2" >&2; exit 3')
    fleet.hosts.web1!.command('whoami-ish', 'echo "on web1"')
    const finished: string[] = []
    const r = await execOnHosts(inv.hosts, 'whoami-ish', {
      transport: fleet.transport,
      concurrency: 3,
      root: false,
      timeoutMs: 5000,
      onResult: (x) => finished.push(x.host),
    })
    expect(r.map((x) => x.host)).toEqual(['lb1', 'web1', 'web2'])
    expect(finished.sort()).toEqual(['lb1', 'web1', 'web2'])
    expect(r[0]).toMatchObject({host: 'lb1', error: expect.stringContaining('Connection refused')})
    expect(r[0]!.code).toBeUndefined()
    expect(r[1]).toMatchObject({host: 'web1', code: 0, stdout: 'on web1\n', stderr: ''})
    expect(r[2]).toMatchObject({host: 'web2', code: 3, stdout: '', stderr: 'on web2\n'})
    expect(r[2]!.error).toBeUndefined()
    // As the login user when asked; each connection closed.
    const ran = fleet.log().filter((c) => c.script === 'whoami-ish')
    expect(ran.map((c) => c.root)).toEqual([false, false])
    expect(fleet.hosts.web1!.closes).toBe(fleet.hosts.web1!.opens)
    fleet.hosts.lb1!.refusing = false
  })

  test('a connection lost during the command is that host’s error, not the run’s', async () => {
    fleet.hosts.web1!.dropAfter((c) => c.script === 'sleepy')
    fleet.hosts.web1!.command('sleepy', 'true')
    fleet.hosts.web2!.command('sleepy', 'true')
    const r = await execOnHosts(inv.hosts.slice(1), 'sleepy', {transport: fleet.transport, concurrency: 1, root: true, timeoutMs: 5000})
    expect(r[0]!.host).toBe('web1')
    expect(r[0]!.code).toBeUndefined()
    expect(r[0]!.error).toMatch(/web1/)
    expect(r[1]).toMatchObject({host: 'web2', code: 0})
    expect(
      fleet
        .log()
        .filter((c) => c.script === 'sleepy')
        .every((c) => c.root),
    ).toBe(true)
  })
})

describe('foobar exec', () => {
  test('without a command after --: exit 2, and how to give one', async () => {
    const r = await runCli(['exec', '-i', 'inventories/lab.yml', '--limit', 'web1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no command given: put it after `--`')
    expect(r.stderr).toContain('foobar exec --limit web1 -- uptime')
  })
  test('an unknown --limit name: exit 2 before any host is contacted', async () => {
    const r = await runCli(['exec', '-i', 'inventories/lab.yml', '--limit', 'web9', '--json', '--', 'true'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout).error.message).toMatch(/web9/)
  })
})
