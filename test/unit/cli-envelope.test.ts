/*
 * The --json envelope, exit codes and --limit through the real CLI (`node bin/run.js`, i.e. dist/ and the oclif
 * manifest as `npm run build` writes them), on commands that need no host: the ones that "reach hosts" here fail
 * at once (their jump host, a closed loopback port, refuses). Also the helpers the commands delegate to
 * (cert schedule's files, db promote's inventory write-back), in-process.
 */

import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {installSchedule, removeSchedule, scheduleName, schedulePlan} from '../../src/components/tls/schedule.js'
import {setPrimary} from '../../src/inventory/write.js'
import {runCli} from './support/run-cli.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const INVENTORY = join(ROOT, 'inventories', 'foobar.yml')
const TMP = mkdtempSync(join(tmpdir(), 'foobar-envelope-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

const cli = (args: string[], env: Record<string, string> = {}): Promise<Run> => runCli(args, env)

interface Envelope {
  status: number
  result: any // eslint-disable-line @typescript-eslint/no-explicit-any
  warnings: string[]
  error?: {name: string; message: string; details?: string[]; suggestions?: string[]; failed?: Record<string, string>}
}

/**
 * The whole of stdout is one envelope whose status is the exit code; nothing on stderr (under --json, stdout carries
 * everything); `error` exactly when the status is not 0.
 */
function envelope(run: Run, code: number): Envelope {
  expect(run.code, run.stdout + run.stderr).toBe(code)
  expect(run.stderr).toBe('')
  const body = JSON.parse(run.stdout) as Envelope
  expect(Object.keys(body).sort()).toEqual(code === 0 ? ['result', 'status', 'warnings'] : ['error', 'result', 'status', 'warnings'])
  expect(body.status).toBe(code)
  expect(Array.isArray(body.warnings)).toBe(true)
  if (code !== 0) expect(body.error).toMatchObject({name: expect.any(String), message: expect.any(String)})
  return body
}

/**
 * inventories/foobar.yml behind a jump host that refuses connections (127.0.0.1:9, closed): each host fails at once
 * (its documentation addresses are never contacted). Not a missing identity file: that is bad input, exit 2.
 */
function unreachable(): string {
  const dir = mkdtempSync(join(TMP, 'hosts-'))
  const file = join(dir, 'inventory.yml')
  const text = readFileSync(INVENTORY, 'utf8')
    .replace('identity_file: ~/.ssh/id_ed25519', 'jump_host: "127.0.0.1:9"')
    .replace('known_hosts: ~/.ssh/known_hosts', `known_hosts: ${join(dir, 'known_hosts')}`)
  expect(text).toContain('127.0.0.1:9')
  writeFileSync(file, text)
  return file
}
const SECRETS = {FOOBAR_REPL_PASSWORD: 'unused', FOOBAR_MONITOR_PASSWORD: 'unused'}

describe.concurrent('the --json envelope', () => {
  test('success: {status: 0, result, warnings}', async () => {
    const body = envelope(await cli(['inventory', 'check', '-i', INVENTORY, '--no-files', '--json']), 0)
    expect(body.result).toEqual({file: INVENTORY, valid: true, hosts: 4})
    expect(body.warnings).toEqual([])
  })

  test('an error without a result: status 2, result null, error with details and suggestions', async () => {
    const file = join(mkdtempSync(join(TMP, 'bad-')), 'bad.yml')
    writeFileSync(file, readFileSync(INVENTORY, 'utf8').replace('  port: 22\n', '  port: 0\n'))
    const body = envelope(await cli(['inventory', 'check', '-i', file, '--json']), 2)
    expect(body.result).toBeNull()
    expect(body.error!.name).toBe('InventoryError')
    expect(body.error!.message).toContain('1 problem')
    expect(body.error!.details).toEqual([
      expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: ssh\\.port: `)),
    ])
    expect(body.error!.suggestions!.length).toBeGreaterThan(0)
  })

  test("oclif's own parse errors are an envelope too (unknown flag, missing argument, bad value): status 2", async () => {
    const unknown = envelope(await cli(['inventory', 'check', '-i', INVENTORY, '--bogus', '--json']), 2)
    expect(unknown.result).toBeNull()
    expect(unknown.error).toMatchObject({name: 'NonExistentFlagsError', message: expect.stringContaining('--bogus')})
    const missing = envelope(await cli(['db', 'promote', '-i', INVENTORY, '--json']), 2)
    expect(missing.error!.message).toMatch(/Missing 1 required arg/)
    const value = envelope(await cli(['plan', '-i', INVENTORY, '--concurrency', '0', '--json']), 2)
    expect(value.error!.message).toMatch(/--concurrency/)
  })

  test('render --json: the files written, and nothing else on stdout', async () => {
    const out = join(mkdtempSync(join(TMP, 'render-')), 'out')
    const body = envelope(await cli(['render', '-i', INVENTORY, '--out', out, '--json']), 0)
    expect(body.result.out).toBe(out)
    expect(body.result.files.length).toBeGreaterThan(10)
    expect(new Set(body.result.files.map((f: {host: string}) => f.host))).toEqual(new Set(['lb1', 'web1', 'web2', 'mon1']))
    for (const f of body.result.files.slice(0, 5)) expect(existsSync(join(out, f.host, f.path))).toBe(true)
  })

  test('a non-zero exit with a result: the result and the error in one envelope (firewall status, 1: every host failed)', async () => {
    const file = unreachable()
    const body = envelope(await cli(['firewall', 'status', '-i', file, '--json']), 1)
    expect(body.result.hosts.map((h: {host: string; error?: string}) => [h.host, typeof h.error])).toEqual([
      ['lb1', 'string'],
      ['web1', 'string'],
      ['web2', 'string'],
      ['mon1', 'string'],
    ])
    expect(body.error!.name).toBe('Failure')
    expect(Object.keys(body.error!.failed!)).toEqual(['lb1', 'web1', 'web2', 'mon1'])
    // For humans: the report on stdout, no JSON, the same exit code, nothing more on stderr (as before).
    const human = await cli(['firewall', 'status', '-i', file])
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/^lb1: ERROR /m)
    expect(human.stdout).not.toMatch(/^\{/)
    expect(human.stderr).toBe('')
  })

  test('verify and plan with failing hosts: exit 1 with their results (the checks, the per-host statuses)', async () => {
    const file = unreachable()
    const verify = envelope(await cli(['verify', '-i', file, '--no-lynis', '--timeout', '0', '--json'], SECRETS), 1)
    expect(verify.result).toMatchObject({passed: 0, failed: 4})
    expect(verify.result.checks.map((c: {host: string}) => c.host)).toEqual(['lb1', 'web1', 'web2', 'mon1'])
    expect(verify.error).toMatchObject({name: 'Failure', message: 'verify failed on every host'})
    const plan = envelope(await cli(['plan', '-i', file, '--detailed-exitcode', '--json'], SECRETS), 1)
    expect(plan.result.summary).toMatchObject({failed: 4})
    expect(plan.result.hosts.map((h: {status: string}) => h.status)).toEqual(['failed', 'failed', 'failed', 'failed'])
    expect(plan.error!.message).toMatch(/^no host succeeded \(4 failed, 0 skipped\)/)
    // For humans, verify still ends with `Error: ...` on stderr, after its progress lines.
    const human = await cli(['verify', '-i', file, '--no-lynis', '--timeout', '0'], SECRETS)
    expect(human.code).toBe(1)
    expect(human.stderr).toMatch(/^✖ lb1 \[FAILED: 0 passed, 1 failed \(ssh\) in /m)
    expect(human.stderr).toMatch(/\nError: verify failed on every host\n$/)
  })
})

describe.concurrent('--limit', () => {
  test('inventory show --limit web --json: only the web hosts; names and roles mix', async () => {
    const web = envelope(await cli(['inventory', 'show', '-i', INVENTORY, '--limit', 'web', '--json']), 0)
    expect(web.result.hosts.map((h: {name: string}) => h.name)).toEqual(['web1', 'web2'])
    const mixed = envelope(await cli(['inventory', 'show', '-i', INVENTORY, '--limit', 'lb,web2', '--json']), 0)
    expect(mixed.result.hosts.map((h: {name: string}) => h.name)).toEqual(['lb1', 'web2'])
  })

  test('an unknown name is exit 2, naming the hosts and the roles', async () => {
    const body = envelope(await cli(['inventory', 'show', '-i', INVENTORY, '--limit', 'nosuchhost', '--json']), 2)
    expect(body.error!.message).toMatch(/nosuchhost/)
    expect(body.error!.details).toContain('hosts: lb1, web1, web2, mon1')
    const human = await cli(['render', '-i', INVENTORY, '--out', join(TMP, 'never'), '--limit', 'nosuchhost'])
    expect(human.code).toBe(2)
    expect(human.stderr).toMatch(/no host or role named "nosuchhost"/)
    expect(human.stderr).toMatch(/hosts: lb1, web1, web2, mon1/)
    expect(existsSync(join(TMP, 'never'))).toBe(false)
  })

  test("patterns and exclusions through the CLI, no warning for them: --limit 'web*' and '!lb'; -h is help", async () => {
    const web = envelope(await cli(['inventory', 'show', '-i', INVENTORY, '--limit', 'web*', '--json']), 0)
    expect(web.result.hosts.map((h: {name: string}) => h.name)).toEqual(['web1', 'web2'])
    expect(web.warnings).toEqual([])
    const notLb = envelope(await cli(['inventory', 'show', '-i', INVENTORY, '--limit', '!lb,!web1', '--json']), 0)
    expect(notLb.result.hosts.map((h: {name: string}) => h.name)).toEqual(['web2', 'mon1'])
    expect(notLb.warnings).toEqual([])
    const help = await cli(['plan', '-h'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^USAGE\n {2}\$ foobar plan /m)
  })

  test('a role no host has selects nothing, with a warning', async () => {
    // The lab's inventory has no monitoring host.
    const LAB = join(ROOT, 'inventories', 'lab.yml')
    const body = envelope(await cli(['inventory', 'show', '-i', LAB, '--limit', 'monitoring', '--json']), 0)
    expect(body.result.hosts).toEqual([])
    expect(body.warnings).toEqual(['--limit monitoring: no host has this role'])
    const human = await cli(['inventory', 'show', '-i', LAB, '--limit', 'monitoring'])
    expect(human.code).toBe(0)
    expect(human.stderr).toMatch(/Warning: --limit monitoring: no host has this role/)
  })

  test('commands without --limit refuse it: exit 2 (cert, db promote, lab, inventory check)', async () => {
    const refused = [
      ['cert', 'status'],
      ['cert', 'renew'],
      ['cert', 'schedule'],
      ['db', 'promote', 'web2'],
      ['lab', 'status'],
      ['inventory', 'check'],
    ]
    const runs = await Promise.all(refused.map((cmd) => cli([...cmd, '-i', INVENTORY, '--limit', 'x'])))
    for (const [i, r] of runs.entries()) {
      expect(r.code, `${refused[i]!.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/Nonexistent flag: --limit/)
    }
    const json = envelope(await cli(['cert', 'status', '-i', INVENTORY, '--limit', 'x', '--json']), 2)
    expect(json.error).toMatchObject({name: 'NonExistentFlagsError', message: 'Nonexistent flag: --limit'})
  })

  test('db status --limit: selects as everywhere, then keeps the database hosts (error when none, warning for the rest)', async () => {
    const file = unreachable()
    const none = envelope(await cli(['db', 'status', '-i', file, '--limit', 'lb', '--json']), 2)
    expect(none.error!.message).toMatch(/none of the selected hosts is a database host/)
    expect(none.error!.details).toEqual(['database hosts: web1, web2'])
    const some = envelope(await cli(['db', 'status', '-i', file, '--limit', 'lb1,web2', '--json']), 1)
    expect(some.result.hosts.map((h: {host: string}) => h.host)).toEqual(['web2'])
    expect(some.warnings).toEqual(['not database hosts, left out: lb1'])
    envelope(await cli(['db', 'status', '-i', file, '--limit', 'nosuch', '--json']), 2)
  })
})

describe('cert schedule (src/components/tls/schedule.ts)', () => {
  test('through the CLI: installed, unchanged, removed, absent, with the cron entry for this inventory', async () => {
    const cronDir = mkdtempSync(join(TMP, 'cron-'))
    const args = ['cert', 'schedule', '-i', INVENTORY, '--cron-dir', cronDir, '--json']
    const name = scheduleName(INVENTORY)
    expect(name).toMatch(/^foobar-cert-renew-foobar-[0-9a-f]{8}$/)
    expect(envelope(await cli(args), 0).result).toMatchObject({action: 'installed', files: [join(cronDir, name)]})
    const entry = readFileSync(join(cronDir, name), 'utf8')
    expect(entry).toMatch(
      /^17 3,15 \* \* \* root \S+ '?\/\S*bin\/run\.js'? cert renew -i '?\/\S*inventories\/foobar\.yml'? --random-delay 3600$/m,
    )
    expect(envelope(await cli(args), 0).result.action).toBe('unchanged')
    expect(envelope(await cli([...args, '--remove']), 0).result.action).toBe('removed')
    expect(readdirSync(cronDir)).toEqual([])
    expect(envelope(await cli([...args, '--remove']), 0).result).toMatchObject({action: 'absent', files: []})
  })

  test('through the CLI: two inventories both named site.yml keep their own entries', async () => {
    const cronDir = mkdtempSync(join(TMP, 'cron-'))
    const [a, b] = ['shop', 'blog'].map((d) => {
      const file = join(mkdtempSync(join(TMP, `${d}-`)), 'site.yml')
      writeFileSync(file, readFileSync(INVENTORY, 'utf8'))
      return file
    })
    const run = (file: string, ...extra: string[]) => cli(['cert', 'schedule', '-i', file, '--cron-dir', cronDir, '--json', ...extra])
    expect(envelope(await run(a!), 0).result.action).toBe('installed')
    expect(envelope(await run(b!), 0).result.action).toBe('installed')
    expect(readdirSync(cronDir).sort()).toEqual([scheduleName(a!), scheduleName(b!)].sort())
    expect(envelope(await run(a!, '--remove'), 0).result).toMatchObject({action: 'removed', files: [join(cronDir, scheduleName(a!))]})
    expect(readdirSync(cronDir)).toEqual([scheduleName(b!)])
    expect(readFileSync(join(cronDir, scheduleName(b!)), 'utf8')).toContain(b!)
  })

  test('systemd: a service and a timer; systemctl (injected) reloads and enables once, disables on remove', () => {
    const unitDir = mkdtempSync(join(TMP, 'units-'))
    const calls: string[] = []
    const systemctl = (args: string[]) => void calls.push(args.join(' '))
    const plan = schedulePlan({
      inventoryFile: '/srv/inv/prod.yml',
      domain: 'www.example.com',
      systemd: true,
      cronDir: '/unused',
      unitDir,
      node: '/usr/bin/node',
      bin: '/opt/foobar/bin/run.js',
    })
    const name = scheduleName('/srv/inv/prod.yml')
    expect(plan.command).toBe('/usr/bin/node /opt/foobar/bin/run.js cert renew -i /srv/inv/prod.yml')
    expect(Object.keys(plan.files)).toEqual([join(unitDir, `${name}.service`), join(unitDir, `${name}.timer`)])
    expect(plan.files[join(unitDir, `${name}.service`)]).toContain(`ExecStart=${plan.command}\n`)
    expect(plan.files[join(unitDir, `${name}.timer`)]).toContain('RandomizedDelaySec=3600')
    expect(installSchedule(plan, systemctl).action).toBe('installed')
    expect(installSchedule(plan, systemctl).action).toBe('unchanged')
    expect(calls).toEqual(['daemon-reload', `enable --now ${name}.timer`])
    expect(removeSchedule(plan, systemctl).action).toBe('removed')
    expect(calls.at(-1)).toBe(`disable --now ${name}.timer`)
    expect(readdirSync(unitDir)).toEqual([])
  })

  test('a path cron would misread is refused', () => {
    expect(() => schedulePlan({inventoryFile: '/srv/50%.yml', domain: 'x', systemd: false, cronDir: '/c', unitDir: '/u'})).toThrow(
      /cron treats specially/,
    )
  })
})

describe('db promote --write (src/inventory/write.ts)', () => {
  test('setPrimary changes mysql.primary and mysql.replicas, and keeps comments and layout', async () => {
    const file = join(mkdtempSync(join(TMP, 'promote-')), 'inv.yml')
    const text = readFileSync(INVENTORY, 'utf8')
    writeFileSync(file, text)
    await setPrimary(file, 'web2', ['web1'])
    const after = readFileSync(file, 'utf8')
    expect(after).toMatch(/^ {2}primary: web2$/m)
    expect(after).toMatch(/^ {2}replicas: \[web1\]$/m)
    // Every other line as it was, comments included.
    const changed = (a: string, b: string) => a.split('\n').filter((l, i) => l !== b.split('\n')[i])
    expect(changed(text, after)).toEqual(['  primary: web1', '  replicas: [web2]'])
  })
})
