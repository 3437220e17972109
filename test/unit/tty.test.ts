/*
 * A terminal never hangs (issue 16): the CLI run in a real pseudo-terminal (util-linux `script`) against hosts
 * that fail fast — here through a jump host on a closed loopback port, so every connection is refused at once (the
 * addresses are documentation ones, never contacted) — must exit within seconds, the progress tree included. And
 * piped, progress goes to stderr while the plan stays on stdout. (A missing identity file no longer does: it is bad
 * input, exit 2 before any host is contacted, see local-files-cli.test.ts.)
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const hasScript = spawnSync('script', ['--version']).status === 0

/** Hosts behind a jump host that refuses connections (127.0.0.1:9, discard, closed): each fails at once. */
function inventory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'foobar-tty-'))
  writeFileSync(join(dir, 'kh'), '')
  const file = join(dir, 'inv.yml')
  writeFileSync(
    file,
    `site: {domain: www.example.test, email: admin@example.test}
ssh: {user: deploy, jump_host: "127.0.0.1:9", known_hosts: kh}
firewall: {admin_cidrs: [192.0.2.1/32]}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb]}
  - {name: web1, address: 192.0.2.11, roles: [web]}
`,
  )
  return file
}

/** Runs the CLI inside a pseudo-terminal; resolves with its exit code and seconds taken, or -1 after `limitMs`. */
function inTerminal(args: string[], limitMs = 15_000, cols?: number): Promise<{code: number; seconds: number; out: string}> {
  return new Promise((done) => {
    const t0 = Date.now()
    // `cols`: a terminal that wide (script's own has none, so lines wrap at every character).
    const command =
      (cols ? `stty cols ${cols}; ` : '') + [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
    const child = spawn('script', ['-qec', command, '/dev/null'], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({code: code ?? -1, seconds: (Date.now() - t0) / 1000, out})
    })
  })
}

describe.skipIf(!hasScript)('in a terminal', () => {
  test.each([
    ['plan', ['plan']],
    ['provision --yes', ['provision', '--yes']],
    ['firewall plan', ['firewall', 'plan']],
    ['verify', ['verify', '--timeout', '0']],
  ])('%s against hosts that fail at once exits within seconds, naming the problem', async (_name, args) => {
    const r = await inTerminal([...args, '-i', inventory()])
    console.log(`tty: foobar ${args.join(' ')} exited ${r.code} after ${r.seconds.toFixed(1)} s`)
    expect(r.code, r.out).toBeGreaterThan(0)
    expect(r.out).toMatch(/ECONNREFUSED 127\.0\.0\.1:9/)
  })

  test("verify draws each host's line, ending with its counts and time", async () => {
    const r = await inTerminal(['verify', '--timeout', '0', '-i', inventory()], 15_000, 150)
    const text = r.out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    expect(text).toMatch(/✖ lb1/)
    expect(text).toMatch(/0 passed, 1 failed \(ssh\) in \d+\.\d s/)
    expect(text).toMatch(/^verify: 0 passed, 2 failed/m)
  })
})

test('verify piped: each check with its result and time on stderr; the table on stdout as before', () => {
  const r = spawnSync(process.execPath, [BIN, 'verify', '--timeout', '0', '-i', inventory()], {encoding: 'utf8', timeout: 30_000})
  expect(r.status).toBe(1)
  expect(r.stderr).toMatch(/^› lb1: ssh: FAIL in \d+\.\d s: lb1: cannot connect to deploy@127\.0\.0\.1:9 .*ECONNREFUSED/m)
  expect(r.stderr).toMatch(/^✖ web1 \[FAILED: 0 passed, 1 failed \(ssh\) in \d+\.\d s\]$/m)
  expect(r.stderr).toMatch(/\nError: verify failed on every host\n$/)
  expect(r.stdout.split('\n')).toEqual([
    expect.stringMatching(/^lb1 {8}ssh {4}FAIL {2}lb1: cannot connect/),
    expect.stringMatching(/^web1 {7}ssh {4}FAIL {2}web1: cannot connect/),
    '',
    'verify: 0 passed, 2 failed',
    '',
  ])
})

test('piped: the progress lines go to stderr, the plan and its summary to stdout', () => {
  const r = spawnSync(process.execPath, [BIN, 'plan', '-i', inventory()], {encoding: 'utf8', timeout: 30_000})
  expect(r.status).toBe(1)
  expect(r.stderr).toMatch(
    /✖ lb1 \[FAILED: cannot connect to deploy@127\.0\.0\.1:9 \(jump host 127\.0\.0\.1\): connect ECONNREFUSED 127\.0\.0\.1:9\]/,
  )
  expect(r.stdout).toMatch(/^plan: 0 ok, 0 changed, 2 failed/m)
  expect(r.stdout).not.toMatch(/❯/)
  // Each host's failure said once on each stream: in the progress (stderr) and in the summary (stdout), never again
  // in the plan's header or the final error line.
  expect(r.stdout.match(/ECONNREFUSED/g)).toHaveLength(2)
  expect(r.stderr.match(/ECONNREFUSED/g)).toHaveLength(2)
  expect(r.stderr).toMatch(/^Error: no host succeeded \(2 failed, 0 skipped\)$/m)
  expect(`${r.stdout}${r.stderr}`).not.toMatch(/(lb1|web1): \1:/)
})
