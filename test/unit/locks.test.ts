/*
 * One run at a time (issue 15): the control machine's lock on an inventory, and the same held-by-a-live-process
 * lock that runs on every host over SSH. A second run names the holder and refuses (exit 5) or waits; a holder
 * that died — even by SIGKILL — holds nothing.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'
import {ExitCode, LockedError} from '../../src/util/errors.js'
import {holderInfo, lockLocal} from '../../src/util/lock.js'
import {inventoryLockPath} from '../../src/cli/session.js'

const ROOT = resolve(import.meta.dirname, '../..')
const BIN = join(ROOT, 'bin/run.js')
const tmp = () => mkdtempSync(join(tmpdir(), 'foobar-lock-'))

describe('the lock on the control machine', () => {
  test('a second taker gets LockedError (exit 5) naming the holder; after release the lock is free', async () => {
    const path = join(tmp(), 'inv.lock')
    const first = await lockLocal(path, 'alice@ctl (pid 1) since then: foobar provision', 'inventory inv.yml')
    const refused = await lockLocal(path, 'bob', 'inventory inv.yml').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(refused).toBeInstanceOf(LockedError)
    expect((refused as LockedError).exitCode).toBe(ExitCode.locked)
    expect((refused as Error).message).toBe(
      'inventory inv.yml is locked by another foobar run: alice@ctl (pid 1) since then: foobar provision',
    )
    first.release()
    const again = await lockLocal(path, 'bob', 'inventory inv.yml', 3000)
    again.release()
  })

  test('waiting: a run that waits gets the lock as soon as the holder lets go', async () => {
    const path = join(tmp(), 'inv.lock')
    const first = await lockLocal(path, 'alice', 'x')
    setTimeout(() => first.release(), 300)
    const t0 = Date.now()
    const second = await lockLocal(path, 'bob', 'x', 10_000)
    expect(Date.now() - t0).toBeLessThan(5000)
    second.release()
  })

  test('a holder killed with SIGKILL holds nothing: the next run takes the lock at once', async () => {
    const path = join(tmp(), 'inv.lock')
    const holder = spawn(process.execPath, [
      '--input-type=module',
      '-e',
      `import {lockLocal} from '${join(ROOT, 'dist/util/lock.js')}'; await lockLocal(${JSON.stringify(path)}, 'doomed', 'x'); console.log('held'); setInterval(() => {}, 1000)`,
    ])
    await new Promise<void>((r) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('held') && r()))
    await expect(lockLocal(path, 'bob', 'x')).rejects.toThrow(/locked by another foobar run: doomed/)
    holder.kill('SIGKILL')
    await new Promise((r) => holder.on('exit', r))
    const t0 = Date.now()
    const mine = await lockLocal(path, 'bob', 'x', 5000)
    console.log(`lock free ${Date.now() - t0} ms after its holder was SIGKILLed`)
    mine.release()
  })

  test('holderInfo says who, where, which process, since when and what', () => {
    expect(holderInfo('foobar provision -i x.yml')).toMatch(
      /^\S+@\S+ \(pid \d+\) since \d{4}-\d\d-\d\dT[\d:.]+Z: foobar provision -i x\.yml$/,
    )
  })
})

describe('through the CLI', () => {
  test('provision while another run holds the inventory: exit 5, the holder named, no host contacted; --wait waits', async () => {
    const dir = tmp()
    const inv = join(dir, 'site.yml')
    writeFileSync(
      inv,
      `site: {domain: www.example.test, email: admin@example.test}
ssh: {user: deploy, jump_host: "127.0.0.1:9", known_hosts: ${join(dir, 'known_hosts')}}
firewall: {admin_cidrs: [192.0.2.1/32]}
hosts:
  - {name: web1, address: 192.0.2.11, roles: [web]}
`,
    )
    const held = await lockLocal(inventoryLockPath(inv), 'alice@ctl (pid 7) since 10:00: foobar provision', `inventory ${inv}`)
    try {
      const r = spawnSync(process.execPath, [BIN, 'provision', '-i', inv, '--yes', '--json'], {encoding: 'utf8', timeout: 30_000})
      expect(r.status).toBe(5)
      const body = JSON.parse(r.stdout)
      expect(body.error.name).toBe('LockedError')
      expect(body.error.message).toContain('alice@ctl (pid 7) since 10:00: foobar provision')
      // Waiting: released after a second, the run goes on (and fails on its host, whose jump host refuses, not on the lock).
      setTimeout(() => held.release(), 1000)
      const waited = await new Promise<{code: number; stderr: string}>((done) => {
        const c = spawn(process.execPath, [BIN, 'provision', '-i', inv, '--yes', '--wait', '10'], {stdio: ['ignore', 'pipe', 'pipe']})
        let stderr = ''
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        c.on('exit', (code) => done({code: code ?? -1, stderr}))
      })
      expect(waited.code).toBe(1)
      expect(waited.stderr).toMatch(/ECONNREFUSED 127\.0\.0\.1:9/)
    } finally {
      held.release()
    }
  })
})
