/**
 * `foobar exec` against the lab's real hosts (issue 21, item 5): a command on the hosts a --limit pattern selects,
 * as root through sudo or as the login user, each host's output and exit status, and the exit code of the whole.
 */
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
