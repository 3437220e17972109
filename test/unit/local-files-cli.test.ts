/*
 * The same local-file error is the same exit code in every command (issue 16, item 10), through the real CLI
 * (`node bin/run.js`, i.e. dist/ as built): an identity file that is missing, a directory, /dev/zero, and a FIFO as
 * known_hosts are bad input — exit 2, before any host is contacted, one message listing each with its field and
 * path — in plan, provision, verify, firewall plan and cert renew exactly as in inventory check. Before, every
 * command but cert and inventory check took them for failed hosts (exit 1). A file only an unselected host needs
 * does not stop a run, a secret only some components read stops only the commands that run them, and a host that
 * cannot be reached stays a failed host (exit 1).
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {runCli} from './support/run-cli.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-local-files-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))
/** No ~/.ssh/known_hosts of the machine's user in the way. */
const HOME = mkdtempSync(join(TMP, 'home-'))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

const cli = (args: string[]): Promise<Run> => runCli(args, {HOME})

function write(name: string, text: string): string {
  const file = join(TMP, name)
  writeFileSync(file, text)
  return file
}

const missing = join(TMP, 'no-such-key')
const directory = join(TMP, 'a-directory')
mkdirSync(directory)
const fifo = join(TMP, 'known_hosts.fifo')
spawnSync('mkfifo', [fifo])

/**
 * An ACME site (cert renew needs one) on documentation addresses, each host with another bad identity file, and
 * a FIFO as known_hosts for all of them.
 */
const BAD = write(
  'bad.yml',
  `site: {domain: www.example.test, email: admin@example.test}
ssh: {user: deploy, known_hosts: ${fifo}}
firewall: {admin_cidrs: [192.0.2.1/32]}
tls: {source: {type: acme, directory: "https://acme.example.test/dir"}}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb], ssh: {identity_file: ${missing}}}
  - {name: web1, address: 192.0.2.11, roles: [web], ssh: {identity_file: ${directory}}}
  - {name: web2, address: 192.0.2.12, roles: [web], ssh: {identity_file: /dev/zero}}
`,
)
const PROBLEMS = [
  `ssh.identity_file (host lb1): ${missing} does not exist`,
  `ssh.known_hosts (host lb1): ${fifo} is a named pipe (FIFO), not a regular file`,
  `ssh.identity_file (host web1): ${directory} is a directory, not a regular file`,
  'ssh.identity_file (host web2): /dev/zero is a character device, not a regular file',
]

describe('a bad local file: exit 2, the same message in every command, no host contacted', () => {
  const commands = [
    ['plan'],
    ['provision', '--yes'],
    ['verify', '--no-lynis', '--timeout', '0'],
    ['firewall', 'plan'],
    ['cert', 'renew'],
    ['inventory', 'check'],
  ]

  test.concurrent.each(commands.map((c) => [c.join(' '), c]))('%s --json', async (_name, args) => {
    const r = await cli([...(args as string[]), '-i', BAD, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(2)
    const body = JSON.parse(r.stdout) as {status: number; result: unknown; error: {name: string; message: string; details: string[]}}
    expect(body.status).toBe(2)
    expect(body.result).toBeNull()
    expect(body.error).toMatchObject({name: 'LocalFilesError', message: `${BAD}: 4 problems with the files and secrets it refers to`})
    expect(body.error.details).toEqual(PROBLEMS)
  })

  test('for humans: the message and each problem on stderr, nothing on stdout (plan; inventory check alike)', async () => {
    for (const args of [['plan'], ['inventory', 'check']]) {
      const r = await cli([...args, '-i', BAD])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain(`Error: ${BAD}: 4 problems with the files and secrets it refers to\n`)
      for (const p of PROBLEMS) expect(r.stderr).toContain(`  - ${p}\n`)
    }
  })
})

describe('what a run needs, and nothing more', () => {
  /** lb1's key is missing; web1 is behind a jump host that refuses connections (127.0.0.1:9, closed). */
  const split = write(
    'split.yml',
    `site: {domain: www.example.test, email: admin@example.test}
ssh: {user: deploy, known_hosts: ${join(TMP, 'known_hosts')}}
firewall: {admin_cidrs: [192.0.2.1/32]}
monitoring: {log_service: {url: {file: ${join(TMP, 'no-such-secret')}}}}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb], ssh: {identity_file: ${missing}}}
  - {name: web1, address: 192.0.2.11, roles: [web], ssh: {jump_host: "127.0.0.1:9"}}
`,
  )
  const refused = 'cannot connect to deploy@127.0.0.1:9 (jump host 127.0.0.1): connect ECONNREFUSED 127.0.0.1:9'

  test('--limit: what only an unselected host or an unused component needs does not stop the run; an unreachable host stays failed (exit 1)', async () => {
    // lb1's key is not selected; the log service's secret is not read by the firewall.
    const r = await cli(['firewall', 'plan', '-i', split, '--limit', 'web1', '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    const body = JSON.parse(r.stdout) as {error: {name: string; failed: Record<string, string>}}
    expect(body.error.name).toBe('Failure')
    expect(body.error.failed).toEqual({web1: refused})
  })

  test('a secret file the selected host needs: plan and verify stop before contacting it (exit 2), naming only that', async () => {
    const problem = `monitoring.log_service.url (secret file): ${join(TMP, 'no-such-secret')} does not exist`
    for (const args of [['plan'], ['verify', '--no-lynis', '--timeout', '0']]) {
      const r = await cli([...args, '-i', split, '--limit', 'web1', '--json'])
      expect(r.code, `${args[0]}: ${r.stdout}${r.stderr}`).toBe(2)
      expect(JSON.parse(r.stdout).error.details).toEqual([problem])
    }
  })
})
