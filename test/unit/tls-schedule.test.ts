/*
 * `foobar cert schedule` entries are unique per inventory and never replace or remove another inventory's
 * (src/components/tls/schedule.ts); the renewal lock is a real lock: flock(1), stale only when no live process
 * holds it (src/components/tls/acme.ts withLock).
 */
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {withLock} from '../../src/components/tls/acme.js'
import {installSchedule, removeSchedule, scheduleName, schedulePlan} from '../../src/components/tls/schedule.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-tls-schedule-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

const plan = (inventoryFile: string, dirs: {cronDir: string; unitDir: string}, systemd = false) =>
  schedulePlan({inventoryFile, domain: 'www.example.test', systemd, ...dirs, node: '/usr/bin/node', bin: '/opt/foobar/bin/run.js'})

describe('cert schedule: one entry per inventory', () => {
  const a = '/srv/shop/site.yml'
  const b = '/srv/blog/site.yml'

  test('the name carries a hash of the absolute path: two site.yml get two names', () => {
    expect(scheduleName(a)).toMatch(/^foobar-cert-renew-site-[0-9a-f]{8}$/)
    expect(scheduleName(b)).toMatch(/^foobar-cert-renew-site-[0-9a-f]{8}$/)
    expect(scheduleName(a)).not.toBe(scheduleName(b))
    expect(scheduleName(a)).toBe(scheduleName('/srv/shop/../shop/site.yml'))
  })

  test('cron: installing the second keeps the first; removing one leaves the other', () => {
    const dirs = {cronDir: mkdtempSync(join(TMP, 'cron-')), unitDir: '/unused'}
    expect(installSchedule(plan(a, dirs)).action).toBe('installed')
    expect(installSchedule(plan(b, dirs)).action).toBe('installed')
    expect(readdirSync(dirs.cronDir).sort()).toEqual([scheduleName(a), scheduleName(b)].sort())
    expect(readFileSync(join(dirs.cronDir, scheduleName(a)), 'utf8')).toContain('cert renew -i /srv/shop/site.yml')
    expect(readFileSync(join(dirs.cronDir, scheduleName(b)), 'utf8')).toContain('cert renew -i /srv/blog/site.yml')
    expect(removeSchedule(plan(a, dirs)).action).toBe('removed')
    expect(readdirSync(dirs.cronDir)).toEqual([scheduleName(b)])
    expect(removeSchedule(plan(a, dirs)).action).toBe('absent')
    expect(readdirSync(dirs.cronDir)).toEqual([scheduleName(b)])
  })

  test('systemd: units per inventory; removing one disables only its timer', () => {
    const dirs = {cronDir: '/unused', unitDir: mkdtempSync(join(TMP, 'units-'))}
    const calls: string[] = []
    const systemctl = (args: string[]) => void calls.push(args.join(' '))
    installSchedule(plan(a, dirs, true), systemctl)
    installSchedule(plan(b, dirs, true), systemctl)
    expect(readdirSync(dirs.unitDir)).toHaveLength(4)
    removeSchedule(plan(a, dirs, true), systemctl)
    expect(calls.at(-1)).toBe(`disable --now ${scheduleName(a)}.timer`)
    expect(readdirSync(dirs.unitDir).sort()).toEqual([`${scheduleName(b)}.service`, `${scheduleName(b)}.timer`])
  })

  test('an entry of the same name that is another inventory is neither replaced nor removed', () => {
    const dirs = {cronDir: mkdtempSync(join(TMP, 'cron-')), unitDir: '/unused'}
    const foreign = join(dirs.cronDir, scheduleName(a))
    writeFileSync(foreign, '17 3 * * * root /usr/bin/node run.js cert renew -i /elsewhere/site.yml\n')
    expect(() => installSchedule(plan(a, dirs))).toThrow(/belongs to another inventory; not replacing it/)
    expect(removeSchedule(plan(a, dirs)).action).toBe('absent')
    expect(readFileSync(foreign, 'utf8')).toContain('/elsewhere/site.yml')
  })

  test('an entry under the old shared name: replaced when it is this inventory, left alone when it is another', () => {
    const dirs = {cronDir: mkdtempSync(join(TMP, 'cron-')), unitDir: '/unused'}
    const old = join(dirs.cronDir, 'foobar-cert-renew-site')
    writeFileSync(old, `17 3,15 * * * root ${plan(b, dirs).command} --random-delay 3600\n`)
    installSchedule(plan(a, dirs))
    expect(existsSync(old)).toBe(true)
    removeSchedule(plan(a, dirs))
    expect(existsSync(old)).toBe(true)
    expect(installSchedule(plan(b, dirs)).action).toBe('installed')
    expect(readdirSync(dirs.cronDir)).toEqual([scheduleName(b)])
  })
})

describe('the renewal lock (flock)', () => {
  const dir = mkdtempSync(join(TMP, 'lock-'))

  /** Another process holding the lock on `file` (as a renewal that has just created it, before writing anything). */
  async function holder(file: string): Promise<() => Promise<void>> {
    const child = spawn('flock', [file, 'sh', '-c', 'echo held; exec cat >/dev/null'], {stdio: ['pipe', 'pipe', 'inherit']})
    await new Promise((r) => child.stdout.once('data', r))
    return async () => {
      child.stdin.end()
      await new Promise((r) => child.on('close', r))
    }
  }

  test('an empty lock file just created by a live holder is not stale: the second renewal waits, then gives up', async () => {
    const file = join(dir, 'empty.lock')
    const release = await holder(file)
    expect(readFileSync(file, 'utf8')).toBe('')
    let ran = false
    const t0 = Date.now()
    await expect(
      withLock(file, 300, async () => {
        ran = true
      }),
    ).rejects.toThrow(`another renewal is running (lock ${file})`)
    expect(ran).toBe(false)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    await release()
    expect(await withLock(file, 300, async () => 'mine')).toBe('mine')
  })

  test('a lock file left behind (a dead pid in it) is not a lock: taken at once', async () => {
    const file = join(dir, 'left.lock')
    writeFileSync(file, '999999\n')
    expect(await withLock(file, 0, async () => 42)).toBe(42)
  })

  test('two renewals in turn, never together; the holder pid is named while it runs', async () => {
    const file = join(dir, 'turns.lock')
    let inside = 0
    let most = 0
    const work = async () => {
      inside++
      most = Math.max(most, inside)
      expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid))
      await new Promise((r) => setTimeout(r, 100))
      inside--
    }
    await Promise.all([withLock(file, 5000, work), withLock(file, 5000, work)])
    expect(most).toBe(1)
    let release!: () => void
    const first = withLock(file, 0, () => new Promise<void>((r) => (release = r)))
    await new Promise((r) => setTimeout(r, 200))
    await expect(withLock(file, 0, async () => undefined)).rejects.toThrow(`another renewal is running (pid ${process.pid}, lock ${file})`)
    release()
    await first
  })

  test('a missing directory is an error, not a hang', async () => {
    mkdirSync(join(dir, 'x'))
    await expect(withLock(join(dir, 'nope', 'renew.lock'), 0, async () => undefined)).rejects.toThrow(/ENOENT/)
  })
})
