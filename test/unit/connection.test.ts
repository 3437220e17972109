/*
 * The command queue of one SSH connection, against a stand-in for node-ssh (no network): never more than
 * MAX_CHANNELS commands at once (sshd's MaxSessions refuses the next one), first come first served, a channel
 * that sshd refused in its close race opened again, any other error passed on untouched.
 */
import {describe, expect, test} from 'vitest'
import {Connection, MAX_CHANNELS} from '../../src/remote/connection.js'
import {loadExample} from './support/render.js'

type Exec = (command: string) => Promise<{code: number; stdout: string; stderr: string}>

/** A Connection whose "SSH library" is `exec`; commands are recognised by the text they echo. */
function connection(exec: Exec): Connection {
  const host = loadExample('lab').hosts[0]!
  const fake = {execCommand: (command: string) => exec(command), dispose() {}}
  // The user it logged in as (the lab's deploy: commands as root go through sudo -n).
  return new (Connection as unknown as new (...a: unknown[]) => Connection)(host, host.ssh.user, fake)
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))
const label = (command: string) => /echo (\w+)/.exec(command)![1]!

describe('Connection: commands on one connection', () => {
  test(`at most ${MAX_CHANNELS} run at once; all finish, each with its own answer, started in order`, async () => {
    let running = 0
    let peak = 0
    const started: string[] = []
    const conn = connection(async (command) => {
      started.push(label(command))
      peak = Math.max(peak, ++running)
      await tick(5)
      running--
      return {code: 0, stdout: `${label(command)}\n`, stderr: ''}
    })
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
    const results = await Promise.all(names.map((n) => conn.run(`echo ${n}`)))
    expect(results.map((r) => r.stdout)).toEqual(names.map((n) => `${n}\n`))
    expect(peak).toBe(MAX_CHANNELS)
    expect(started).toEqual(names)
  })

  test('a channel refused by sshd is opened again (nothing ran); the slot is not lost', async () => {
    const attempts = new Map<string, number>()
    const conn = connection(async (command) => {
      const n = label(command)
      attempts.set(n, (attempts.get(n) ?? 0) + 1)
      if (n === 'b' && attempts.get(n)! < 3) throw new Error('(SSH) Channel open failure: open failed')
      await tick(2)
      return {code: 0, stdout: n, stderr: ''}
    })
    const results = await Promise.all(['a', 'b', 'c'].map((n) => conn.run(`echo ${n}`)))
    expect(results.map((r) => r.stdout)).toEqual(['a', 'b', 'c'])
    expect(Object.fromEntries(attempts)).toEqual({a: 1, b: 3, c: 1})
  })

  test('any other failure is not retried and frees its slot; a channel refused for good fails in the end', async () => {
    let calls = 0
    const conn = connection(async (command) => {
      calls++
      if (label(command) === 'boom') throw new Error('Not connected')
      if (label(command) === 'never') throw new Error('(SSH) Channel open failure: open failed')
      return {code: 0, stdout: 'ok', stderr: ''}
    })
    await expect(conn.run('echo boom')).rejects.toThrow('Not connected')
    expect(calls).toBe(1)
    await expect(conn.run('echo never')).rejects.toThrow(/Channel open failure/)
    expect(calls).toBe(1 + 8)
    // Both slots are free again.
    expect((await Promise.all([conn.run('echo x'), conn.run('echo y'), conn.run('echo z')])).map((r) => r.stdout)).toEqual([
      'ok',
      'ok',
      'ok',
    ])
  })
})
