/*
 * The command queue of one SSH connection, against a stand-in for node-ssh (no network): never more than
 * MAX_CHANNELS commands at once (sshd's MaxSessions refuses the next one), first come first served, a channel
 * that sshd refused in its close race opened again, any other error passed on untouched.
 */
import {spawn, spawnSync} from 'node:child_process'
import {EventEmitter} from 'node:events'
import {existsSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {Connection, MAX_CHANNELS, STDIN_SCRIPT_BYTES, readThen} from '../../src/remote/connection.js'
import {BUSY, holdScript, lockLocal} from '../../src/util/lock.js'
import {loadExample} from './support/render.js'

type Exec = (command: string, ...rest: unknown[]) => Promise<{code: number; stdout: string; stderr: string}>

/** A Connection whose "SSH library" is `exec`; commands are recognised by the text they echo. */
function connection(exec: Exec): Connection {
  const host = loadExample('lab').hosts[0]!
  const fake = {execCommand: (command: string, options?: unknown) => exec(command, options), dispose() {}}
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

describe('Connection: a long script goes to the shell on stdin, not on the command line', () => {
  /** Runs the command line as the login shell would, locally (sudo left out): what the host would print. */
  function local(seen: Array<{command: string; stdin?: unknown}>, env: Record<string, string> = {}): Connection {
    return connection(async (command, ...rest) => {
      const o = (rest[0] ?? {}) as {stdin?: string}
      seen.push({command, stdin: o.stdin})
      const r = spawnSync('/bin/sh', ['-c', command.replace(/^sudo -n -- /, '')], {
        input: o.stdin ?? '',
        encoding: 'utf8',
        env: {...process.env, ...env},
      })
      return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
    })
  }
  // Over STDIN_SCRIPT_BYTES; ends in a here-doc and in blank lines of output, reads stdin, and fails with its own code.
  const long = [
    "echo 'first line'",
    ...Array.from({length: 300}, (_, i) => `v${i}='${'x'.repeat(10)}'; [ -n "$v${i}" ] || exit 9`),
    'printf "stdin: [%s]\\n" "$(cat)"',
    'cat <<FB_EOF',
    'last $v299',
    '',
    '',
    'FB_EOF',
    'exit 3',
  ].join('\n')

  test('the same output and exit code as on the command line; sudo logs a short line that names the script', async () => {
    expect(Buffer.byteLength(long)).toBeGreaterThan(STDIN_SCRIPT_BYTES)
    const seen: Array<{command: string; stdin?: unknown}> = []
    const r = await local(seen).run(long, {check: false})
    const direct = spawnSync('/bin/sh', ['-c', long], {input: '', encoding: 'utf8'})
    expect(r.code).toBe(3)
    expect(r.stdout).toBe(direct.stdout)
    expect(r.stdout).toBe(`first line\nstdin: []\nlast ${'x'.repeat(10)}\n\n\n`)
    expect(seen[0]!.command.length).toBeLessThan(400)
    expect(seen[0]!.command).toMatch(/^sudo -n -- \/bin\/sh -c .*first line/)
    expect(seen[0]!.stdin).toBe(long)
  })

  test('a short script, or one with stdin of its own, stays on the command line', async () => {
    const seen: Array<{command: string; stdin?: unknown}> = []
    const conn = local(seen)
    expect((await conn.run('echo short')).stdout).toBe('short\n')
    expect(seen[0]!.command).toContain('echo short')
    const withInput = await conn.run(`${long.replace('exit 3', 'exit 0')}`, {stdin: 'given'})
    expect(withInput.stdout).toContain('stdin: [given]')
    expect(seen[1]!.command.length).toBeGreaterThan(STDIN_SCRIPT_BYTES)
  })

  // The login shell has SSH_CONNECTION; sudo's env_reset would drop it, so it reaches the script as an argument.
  const SSH_CONNECTION = '198.51.100.7 50022 10.77.0.12 22'

  test.each([
    ['a short script', 'echo "args: $#"; echo out', 'args: 0\nout\n'],
    [
      'a long one, on stdin',
      `${long.replace('exit 3', 'echo "args: $#"')}`,
      `first line\nstdin: []\nlast ${'x'.repeat(10)}\n\n\nargs: 0\n`,
    ],
  ])(
    "learnClient, %s: the address the host sees comes with the output, which is the script's own; no second round trip",
    async (_, script, output) => {
      const seen: Array<{command: string; stdin?: unknown}> = []
      const conn = local(seen, {SSH_CONNECTION})
      const r = await conn.run(script, {learnClient: true})
      expect(r.stdout).toBe(output)
      expect(seen).toHaveLength(1)
      expect(await conn.clientAddress()).toBe('198.51.100.7')
      expect(seen).toHaveLength(1)
    },
  )

  test('without learnClient the address is asked once, on a channel of its own, and kept', async () => {
    const seen: Array<{command: string; stdin?: unknown}> = []
    const conn = local(seen, {SSH_CONNECTION})
    expect((await conn.run('echo "args: $#"')).stdout).toBe('args: 0\n')
    expect(seen[0]!.command).not.toContain('SSH_CONNECTION')
    expect(await conn.clientAddress()).toBe('198.51.100.7')
    expect(await conn.clientAddress()).toBe('198.51.100.7')
    expect(seen).toHaveLength(2)
  })

  test('learnClient where SSH_CONNECTION is empty: no address, and none asked again', async () => {
    const seen: Array<{command: string; stdin?: unknown}> = []
    const conn = local(seen, {SSH_CONNECTION: ''})
    expect((await conn.run('echo out', {learnClient: true})).stdout).toBe('out\n')
    expect(await conn.clientAddress()).toBeUndefined()
    expect(seen).toHaveLength(1)
  })
})

describe("Connection.hold: a host's lock and a script in one round trip (issue 20)", () => {
  /**
   * A Connection whose SSH channel is a local shell running the command line as the login shell would (sudo left
   * out): stdin stays open until `release`, as the lock's does over SSH.
   */
  function holding(env: Record<string, string> = {}): {conn: Connection; commands: string[]} {
    const commands: string[] = []
    const host = loadExample('lab').hosts[0]!
    const exec = (command: string, cb: (error: Error | undefined, stream: unknown) => void) => {
      commands.push(command)
      const child = spawn('/bin/sh', ['-c', command.replace(/^sudo -n -- /, '')], {env: {...process.env, ...env}})
      const stream = Object.assign(new EventEmitter(), {
        stderr: child.stderr,
        write: (s: string) => child.stdin.write(s),
        end: () => child.stdin.end(),
      })
      child.stdout.on('data', (d: Buffer) => stream.emit('data', d))
      child.on('close', (code) => stream.emit('close', code))
      cb(undefined, stream)
    }
    const fake = {connection: {exec}, execCommand: () => Promise.reject(new Error('no command expected')), dispose() {}}
    const conn = new (Connection as unknown as new (...a: unknown[]) => Connection)(host, host.ssh.user, fake)
    return {conn, commands}
  }
  const SSH_CONNECTION = '198.51.100.7 50022 10.77.0.12 22'
  // Long (it reaches the shell as the hold's stdin too), reads stdin, ends in blank lines, fails with a code of its own.
  const script = [
    'echo "@@os test"',
    ...Array.from({length: 300}, (_, i) => `v${i}='${'x'.repeat(10)}'`),
    'printf "stdin: [%s]\\n" "$(cat)"',
    'echo "args: $#"',
    `echo "its own end line: @@then-end 0"`,
    'printf "last %s\\n\\n\\n" "$v299"',
    'exit 3',
  ].join('\n')

  test("once locked, the script's output and exit code, the address the host sees; the lock held until released", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'foobar-hold-')), 'run.lock')
    const {conn, commands} = holding({SSH_CONNECTION})
    const held = await conn.hold!(holdScript(path, 'run A'), {script, learnClient: true})
    expect(held.line).toBe('locked')
    expect(held.then).toEqual({
      code: 3,
      stdout: `@@os test\nstdin: []\nargs: 0\nits own end line: @@then-end 0\nlast ${'x'.repeat(10)}\n\n\n`,
      stderr: '',
    })
    // Learnt in the same round trip: no command asks for it.
    expect(await conn.clientAddress()).toBe('198.51.100.7')
    expect(commands).toHaveLength(1)
    expect(commands[0]!.length).toBeLessThan(2000)
    // Still held after the script: a second run is refused, naming the holder; free once released.
    await expect(lockLocal(path, 'run B', 'the host')).rejects.toThrow(/locked by another foobar run: run A/)
    held.release()
    const again = await lockLocal(path, 'run B', 'the host', 5000)
    again.release()
  })

  test('a lock taken elsewhere: BUSY, and the script does not run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'foobar-hold-'))
    const path = join(dir, 'run.lock')
    const other = await lockLocal(path, 'run A', 'the host')
    const {conn} = holding()
    const marker = join(dir, 'ran')
    const held = await conn.hold!(holdScript(path, 'run B'), {script: `touch ${marker}; echo done`})
    other.release()
    expect(held).toMatchObject({line: '', code: BUSY})
    expect(held.then).toBeUndefined()
    expect(existsSync(marker)).toBe(false)
  })

  test.each([
    ['nothing printed yet', '', undefined],
    ['its end line not complete', 'out\n\n@@then-end-ab 0', undefined],
    ['output, then its end line', 'a\nb\n\n@@then-end-ab 7\n', {code: 7, stdout: 'a\nb\n'}],
    ['no output at all', '\n@@then-end-ab 0\n', {code: 0, stdout: ''}],
  ])('readThen: %s', (_, rest, expected) => {
    expect(readThen(rest, '@@then-end-ab ', false)).toEqual(expected)
  })
})
