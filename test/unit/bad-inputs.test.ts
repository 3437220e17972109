/*
 * Bad inventories through the real CLI (`node bin/run.js`, i.e. dist/ as built by `npm test`): each must exit 2,
 * name the field and file:line, and render nothing. The CLI runs are spawned concurrently to keep this file fast.
 */
import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {parseDocument} from 'yaml'
import {InventoryError, parseInventory} from '../../src/inventory/index.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'run.js')
const TMP = mkdtempSync(join(tmpdir(), 'foobar-bad-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

/** A valid inventory that sets every string field that reaches a template or a command. */
const BASE = `site:
  domain: www.foobar.com
  aliases: [foobar.com]
  email: admin@foobar.com
ssh:
  user: deploy
  port: 22
  identity_file: ~/.ssh/id_ed25519
  known_hosts: ~/.ssh/known_hosts
  jump_host: deploy@bastion.foobar.com:22
  sudo: true
apt:
  proxy: http://10.0.0.1:3142
firewall:
  backend: ufw
  admin_cidrs: [198.51.100.0/24]
  extra_ports:
    web:
      - {port: 8443, proto: tcp, from: [198.51.100.0/24], comment: admin api}
tls:
  profile: intermediate
  source:
    type: acme
    directory: https://acme-v02.api.letsencrypt.org/directory
    email: certs@foobar.com
    challenge: http-01
    dns_hook: hooks/dns.sh
lb:
  balance: roundrobin
  health_check: /healthz
nginx:
  responses:
    - {path: /old-shop/, status: 410}
mysql:
  engine: mariadb
  primary: web1
  replicas: [web2]
  replication_user: repl
  replication_password: {env: FOOBAR_REPL_PASSWORD}
  monitor_password: {file: secrets/monitor}
monitoring:
  sources: [198.51.100.10/32]
app:
  upstream: 127.0.0.1:9000
hosts:
  - name: lb1
    address: 203.0.113.10
    roles: [lb]
  - name: web1
    address: 203.0.113.11
    roles: [web, db]
  - name: web2
    address: 203.0.113.12
    roles: [web, db]
`

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, FOOBAR_INVENTORY: ''}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (status) => resolvePromise({status, stdout, stderr}))
  })
}

/** A fresh directory with the inventory and an empty out dir. */
function scratch(text: string): {file: string; out: string} {
  const dir = mkdtempSync(join(TMP, 'case-'))
  const file = join(dir, 'inventory.yml')
  writeFileSync(file, text)
  const out = join(dir, 'out')
  mkdirSync(out)
  return {file, out}
}

/** Applies line edits to BASE; every `from` must occur exactly once. */
function edit(...edits: Array<[string, string]>): string {
  let text = BASE
  for (const [from, to] of edits) {
    const at = text.indexOf(from)
    if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`edit: ${JSON.stringify(from)} must occur exactly once`)
    text = text.slice(0, at) + to + text.slice(at + from.length)
  }
  return text
}

/** 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle))
  if (i < 0) throw new Error(`lineOf: ${JSON.stringify(needle)} not in the inventory`)
  return i + 1
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Renders `text` through the CLI and checks: exit 2, `file:line:col: field:` in the message, nothing written. */
async function expectRejected(text: string, field: string, line: number, mention?: string): Promise<Run> {
  const {file, out} = scratch(text)
  const run = await runCli(['render', '-i', file, '--out', out])
  expect(run.status, `exit status; stderr:\n${run.stderr}`).toBe(2)
  expect(run.stderr).toMatch(new RegExp(`^  - ${escapeRe(file)}:${line}:\\d+: ${escapeRe(field)}: `, 'm'))
  if (mention) expect(run.stderr).toContain(mention)
  expect(run.stderr).not.toMatch(/^\s+at /m) // no stack trace
  expect(readdirSync(out), 'files were rendered for a bad inventory').toEqual([])
  return run
}

describe.concurrent('the base inventory is valid (control)', () => {
  test('renders files for every host, so "nothing written" below means something', async () => {
    const {file, out} = scratch(BASE)
    const run = await runCli(['render', '-i', file, '--out', out])
    expect(run.status, run.stderr).toBe(0)
    expect(readdirSync(out).sort()).toEqual(['lb1', 'web1', 'web2'])
  })
})

describe.concurrent('structural problems: exit 2, field and line named, nothing rendered', () => {
  test('unknown role', async () => {
    const text = edit(['    roles: [lb]', '    roles: [lb, cache]'])
    await expectRejected(text, 'hosts[0].roles[1]', lineOf(text, 'cache'), '"cache"')
  })

  test('duplicate host name', async () => {
    const text = `${BASE}  - name: lb1\n    address: 203.0.113.13\n    roles: [web]\n`
    const run = await expectRejected(text, 'hosts[3].name', lineOf(text, 'address: 203.0.113.13') - 1, 'duplicate host name "lb1"')
    expect(run.stderr).toContain('hosts[0]')
  })

  test('duplicate address', async () => {
    const text = edit(['address: 203.0.113.12', 'address: 203.0.113.11'])
    const run = await expectRejected(text, 'hosts[2].address', lineOf(text, 'roles: [web, db]') + 2, 'duplicate address "203.0.113.11"')
    expect(run.stderr).toContain('hosts[1]')
  })

  test('invalid IP', async () => {
    const text = edit(['address: 203.0.113.10', 'address: 203.0.113.256'])
    await expectRejected(text, 'hosts[0].address', lineOf(text, '203.0.113.256'), '"203.0.113.256"')
  })

  test('invalid CIDR (prefix too long)', async () => {
    const text = edit(['admin_cidrs: [198.51.100.0/24]', 'admin_cidrs: [198.51.100.0/33]'])
    await expectRejected(text, 'firewall.admin_cidrs[0]', lineOf(text, '/33'), '"198.51.100.0/33"')
  })

  test('invalid CIDR (not an address)', async () => {
    const text = edit(['sources: [198.51.100.10/32]', 'sources: [198.51.100/24]'])
    await expectRejected(text, 'monitoring.sources[0]', lineOf(text, '198.51.100/24'), '"198.51.100/24"')
  })

  test('port out of range (ssh.port)', async () => {
    const text = edit(['  port: 22\n', '  port: 65536\n'])
    await expectRejected(text, 'ssh.port', lineOf(text, '65536'), '65536')
  })

  test('port out of range (extra port 0)', async () => {
    const text = edit(['{port: 8443,', '{port: 0,'])
    await expectRejected(text, 'firewall.extra_ports.web[0].port', lineOf(text, '{port: 0,'), '1 to 65535')
  })

  test('two primaries', async () => {
    const text = edit(['  primary: web1\n  replicas: [web2]', '  primary: [web1, web2]\n  replicas: []'])
    await expectRejected(text, 'mysql.primary', lineOf(text, 'primary: [web1, web2]'), 'two primaries (web1, web2)')
  })

  test('a replica with no primary', async () => {
    const text = edit(['  primary: web1\n', ''])
    await expectRejected(text, 'mysql.replicas', lineOf(text, 'replicas: [web2]'), 'replicas need a primary')
  })

  test('an LB with no web backends', async () => {
    const text = edit(
      ['    address: 203.0.113.11\n    roles: [web, db]', '    address: 203.0.113.11\n    roles: [db]'],
      ['    address: 203.0.113.12\n    roles: [web, db]', '    address: 203.0.113.12\n    roles: [db]'],
    )
    await expectRejected(text, 'hosts[0].roles', lineOf(text, 'roles: [lb]'), 'needs web backends')
  })

  test('hosts with different certificate sources (tls.source is one for the inventory)', async () => {
    const text = edit([
      '    address: 203.0.113.12\n    roles: [web, db]\n',
      '    address: 203.0.113.12\n    roles: [web, db]\n    tls: {source: {type: self-signed}}\n',
    ])
    const run = await expectRejected(
      text,
      'hosts[2].tls.source',
      lineOf(text, 'type: self-signed'),
      "web2's certificate source is self-signed (set on the host)",
    )
    expect(run.stderr).toContain("lb1's is acme (from the top level)")
  })
})

/*
 * Hostile values: config syntax (`;`, braces, quotes, newlines) and shell syntax (backticks, `$(...)`) in every
 * string field that reaches a template or a command. Values are written YAML double-quoted (JSON), one per line.
 */
const PAYLOADS = {
  semicolon: 'www.foobar.com; include /etc/passwd',
  newline: 'www.foobar.com\nserver_name evil.example',
  braces: 'x } server { listen 8080',
  doubleQuote: 'x" evil "y',
  singleQuote: "x' evil 'y",
  backticks: 'x`touch /tmp/foobar-pwned`',
  dollarParen: 'x$(touch /tmp/foobar-pwned)',
} as const
type PayloadName = keyof typeof PAYLOADS

interface Field {
  /** Path as the error message prints it. */
  field: string
  /** The YAML path, for the in-process sweep. */
  path: Array<string | number>
  /** The exact text in BASE that holds the value, and how to put a value there. */
  from: string
  to: (quoted: string) => string
}

const FIELDS: Field[] = [
  {field: 'site.domain', path: ['site', 'domain'], from: 'domain: www.foobar.com', to: (q) => `domain: ${q}`},
  {field: 'site.aliases[0]', path: ['site', 'aliases', 0], from: 'aliases: [foobar.com]', to: (q) => `aliases: [${q}]`},
  {field: 'site.email', path: ['site', 'email'], from: 'email: admin@foobar.com', to: (q) => `email: ${q}`},
  {field: 'ssh.user', path: ['ssh', 'user'], from: 'user: deploy', to: (q) => `user: ${q}`},
  {field: 'ssh.identity_file', path: ['ssh', 'identity_file'], from: 'identity_file: ~/.ssh/id_ed25519', to: (q) => `identity_file: ${q}`},
  {field: 'ssh.known_hosts', path: ['ssh', 'known_hosts'], from: 'known_hosts: ~/.ssh/known_hosts', to: (q) => `known_hosts: ${q}`},
  {field: 'ssh.jump_host', path: ['ssh', 'jump_host'], from: 'jump_host: deploy@bastion.foobar.com:22', to: (q) => `jump_host: ${q}`},
  {field: 'apt.proxy', path: ['apt', 'proxy'], from: 'proxy: http://10.0.0.1:3142', to: (q) => `proxy: ${q}`},
  {
    field: 'firewall.extra_ports.web[0].comment',
    path: ['firewall', 'extra_ports', 'web', 0, 'comment'],
    from: 'comment: admin api',
    to: (q) => `comment: ${q}`,
  },
  {
    field: 'firewall.admin_cidrs[0]',
    path: ['firewall', 'admin_cidrs', 0],
    from: 'admin_cidrs: [198.51.100.0/24]',
    to: (q) => `admin_cidrs: [${q}]`,
  },
  {
    field: 'tls.source.directory',
    path: ['tls', 'source', 'directory'],
    from: 'directory: https://acme-v02.api.letsencrypt.org/directory',
    to: (q) => `directory: ${q}`,
  },
  {field: 'tls.source.email', path: ['tls', 'source', 'email'], from: 'email: certs@foobar.com', to: (q) => `email: ${q}`},
  {field: 'tls.source.dns_hook', path: ['tls', 'source', 'dns_hook'], from: 'dns_hook: hooks/dns.sh', to: (q) => `dns_hook: ${q}`},
  {field: 'lb.health_check', path: ['lb', 'health_check'], from: 'health_check: /healthz', to: (q) => `health_check: ${q}`},
  {
    field: 'nginx.responses[0].path',
    path: ['nginx', 'responses', 0, 'path'],
    from: 'path: /old-shop/',
    to: (q) => `path: ${q}`,
  },
  {
    field: 'mysql.replication_user',
    path: ['mysql', 'replication_user'],
    from: 'replication_user: repl',
    to: (q) => `replication_user: ${q}`,
  },
  {
    field: 'mysql.replication_password.env',
    path: ['mysql', 'replication_password', 'env'],
    from: '{env: FOOBAR_REPL_PASSWORD}',
    to: (q) => `{env: ${q}}`,
  },
  {
    field: 'mysql.monitor_password.file',
    path: ['mysql', 'monitor_password', 'file'],
    from: '{file: secrets/monitor}',
    to: (q) => `{file: ${q}}`,
  },
  {field: 'app.upstream', path: ['app', 'upstream'], from: 'upstream: 127.0.0.1:9000', to: (q) => `upstream: ${q}`},
  {field: 'hosts[0].name', path: ['hosts', 0, 'name'], from: '- name: lb1', to: (q) => `- name: ${q}`},
  {field: 'hosts[0].address', path: ['hosts', 0, 'address'], from: 'address: 203.0.113.10', to: (q) => `address: ${q}`},
]

/** The value as the field would normally hold it, with the payload's hostile part appended. */
function hostileValue(f: Field, payload: PayloadName): string {
  const p = PAYLOADS[payload]
  if (payload === 'semicolon' || payload === 'newline') {
    const original = parseDocument(BASE).getIn(f.path)
    return `${String(original)}${p.slice('www.foobar.com'.length)}`
  }
  return p
}

function withValue(f: Field, value: string): string {
  return edit([f.from, f.to(JSON.stringify(value))])
}

const NAMES = Object.keys(PAYLOADS) as PayloadName[]

describe.concurrent('hostile values through the CLI: exit 2, field and line named, nothing rendered', () => {
  // The classic: every payload in the site domain.
  for (const payload of NAMES) {
    test(`site.domain with ${payload}`, async () => {
      const value = hostileValue(FIELDS[0]!, payload)
      const text = withValue(FIELDS[0]!, value)
      const run = await expectRejected(text, 'site.domain', lineOf(text, JSON.stringify(value)), JSON.stringify(value))
      // The bad value is shown quoted: a newline in it must not start a line of the message.
      if (value.includes('\n')) expect(run.stderr).not.toContain(value)
    })
  }
  // Every other field, with payloads rotated so each kind of syntax is tried in several fields.
  FIELDS.slice(1).forEach((f, i) => {
    const payload = NAMES[i % NAMES.length]!
    test(`${f.field} with ${payload}`, async () => {
      const value = hostileValue(f, payload)
      const text = withValue(f, value)
      await expectRejected(text, f.field, lineOf(text, JSON.stringify(value)), JSON.stringify(value))
    })
  })
  test('nothing was executed by any of the values above', () => {
    expect(readdirSync('/tmp').filter((n) => n.startsWith('foobar-pwned'))).toEqual([])
  })
})

describe('hostile values in-process: every payload in every field is rejected at that field', () => {
  for (const f of FIELDS) {
    test(f.field, () => {
      for (const payload of NAMES) {
        const value = hostileValue(f, payload)
        let err: unknown
        try {
          parseInventory(withValue(f, value), '/srv/inv.yml')
        } catch (e) {
          err = e
        }
        expect(err, `${f.field} accepted ${JSON.stringify(value)}`).toBeInstanceOf(InventoryError)
        const problems = (err as InventoryError).problems
        expect(
          problems.some((p) => p.field === f.field && p.message.includes(JSON.stringify(value))),
          `${f.field} = ${JSON.stringify(value)}: ${JSON.stringify(problems)}`,
        ).toBe(true)
      }
    })
  }
})

describe.concurrent('inventory check --json', () => {
  test('a bad file exits 2 with a JSON body listing every problem', async () => {
    const text = edit(
      ['domain: www.foobar.com', `domain: ${JSON.stringify(PAYLOADS.semicolon)}`],
      ['  port: 22\n', '  port: 0\n'],
      ['    roles: [lb]', '    roles: [lb, cache]'],
    )
    const {file} = scratch(text)
    const run = await runCli(['inventory', 'check', '-i', file, '--json'])
    expect(run.status).toBe(2)
    const body = JSON.parse(run.stdout) as {status: number; result: null; error: {name: string; message: string; details: string[]}}
    expect(body.status).toBe(2)
    expect(body.result).toBeNull()
    expect(body.error.name).toBe('InventoryError')
    expect(body.error.message).toContain('3 problems')
    expect(body.error.details).toHaveLength(3)
    expect(body.error.details).toContainEqual(
      expect.stringMatching(new RegExp(`^${escapeRe(file)}:2:\\d+: site\\.domain: .*include /etc/passwd`)),
    )
    expect(body.error.details).toContainEqual(expect.stringMatching(new RegExp(`^${escapeRe(file)}:7:\\d+: ssh\\.port: `)))
    expect(body.error.details).toContainEqual(
      expect.stringMatching(new RegExp(`^${escapeRe(file)}:${lineOf(text, 'cache')}:\\d+: hosts\\[0\\]\\.roles\\[1\\]: `)),
    )
  })

  test('a good file exits 0 with valid: true', async () => {
    const {file} = scratch(BASE)
    const run = await runCli(['inventory', 'check', '-i', file, '--no-files', '--json'])
    expect(run.status, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({status: 0, result: {valid: true, hosts: 3}})
  })
})

/* Issue 16: the firewall cannot be widened by accident, addresses with real semantics, the contract's edges. */
describe.concurrent('trust at the edges: exit 2, field and line named, nothing rendered', () => {
  const EXTRA = '      - {port: 8443, proto: tcp, from: [198.51.100.0/24], comment: admin api}\n'

  test('an extra port on SSH (the LB open to the world under the SSH comment)', async () => {
    const text = edit([EXTRA, `${EXTRA}    lb:\n      - {port: 22}\n`])
    await expectRejected(text, 'firewall.extra_ports.lb[0]', lineOf(text, '{port: 22}'), 'port 22/tcp is SSH')
  })

  test('an extra port on the database from 0.0.0.0/0', async () => {
    const text = edit([EXTRA, `${EXTRA}    db:\n      - {port: 3306, from: [0.0.0.0/0]}\n`])
    await expectRejected(
      text,
      'firewall.extra_ports.db[0]',
      lineOf(text, '{port: 3306'),
      'the database (from web and database hosts) on web1, web2',
    )
  })

  test('admin_cidrs [0.0.0.0/0] without firewall.allow_any_source', async () => {
    const text = edit(['admin_cidrs: [198.51.100.0/24]', 'admin_cidrs: [0.0.0.0/0]'])
    await expectRejected(text, 'firewall.admin_cidrs[0]', lineOf(text, '0.0.0.0/0'), 'allow_any_source: {ssh:')
  })

  test('monitoring.sources [0.0.0.0/0] without firewall.allow_any_source', async () => {
    const text = edit(['sources: [198.51.100.10/32]', 'sources: [0.0.0.0/0]'])
    await expectRejected(text, 'monitoring.sources[0]', lineOf(text, 'sources: [0.0.0.0/0]'), 'allow_any_source: {exporters:')
  })

  test('0.0.0.0 as a host address', async () => {
    const text = edit(['address: 203.0.113.12', 'address: 0.0.0.0'])
    await expectRejected(text, 'hosts[2].address', lineOf(text, 'address: 0.0.0.0'), 'unspecified address')
  })

  test('a multicast address and a zone id', async () => {
    const text = edit(['address: 203.0.113.11', 'address: 224.0.0.5'], ['address: 203.0.113.12', 'address: "fe80::1%eth0"'])
    await expectRejected(text, 'hosts[1].address', lineOf(text, '224.0.0.5'), 'multicast')
    await expectRejected(text, 'hosts[2].address', lineOf(text, 'fe80::1%eth0'), 'zone id')
  })

  test('an IPv4-mapped IPv6 address is the same host as the IPv4 one', async () => {
    const text = edit(['address: 203.0.113.12', 'address: "::ffff:203.0.113.10"'])
    await expectRejected(text, 'hosts[2].address', lineOf(text, '::ffff:203.0.113.10'), 'both are 203.0.113.10')
  })

  test('a host named like a role', async () => {
    const text = edit(['- name: lb1', '- name: web'])
    await expectRejected(text, 'hosts[0].name', lineOf(text, '- name: web'), '"web" is a role name')
  })

  test('a look-alike in a host name is named by position and code point', async () => {
    const text = edit(['- name: lb1', '- name: l\u0185'])
    const run = await expectRejected(text, 'hosts[0].name', lineOf(text, '- name: l'), 'character 2 is U+0185')
    expect(run.stderr).toContain('"l\\u0185"')
  })

  test('a billion-laughs document: exit 2 at the first alias, no ReferenceError', async () => {
    const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    for (const [prev, name] of [...'abcdefgh'].map((c, i) => [c, 'bcdefghi'[i]!]))
      levels.push(`${name}: &${name} [${`*${prev}, `.repeat(8)}*${prev}]`)
    const text = `${levels.join('\n')}\n${BASE}`
    const run = await expectRejected(text, 'YAML', 2, 'resource-exhaustion')
    expect(run.stderr).not.toContain('ReferenceError')
  })

  test('an unknown tag', async () => {
    const text = edit(['proxy: http://10.0.0.1:3142', 'proxy: !!js/function http://10.0.0.1:3142'])
    await expectRejected(text, 'YAML', lineOf(text, '!!js/function'), 'js/function')
  })

  test('a shadow file passed with -i: the keys are shortened, no hash is echoed (--json too)', async () => {
    const hash = '$6$Zq0salt$AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCD./'
    const {file} = scratch(`root:${hash}:19700:0:99999:7:::\nops:$y$j9T$secretsalt$hashhash:19700:0:99999:7:::\n`)
    for (const json of [false, true]) {
      const run = await runCli(['inventory', 'check', '-i', file, ...(json ? ['--json'] : [])])
      expect(run.status).toBe(2)
      const out = run.stdout + run.stderr
      for (const secret of ['Zq0salt', 'secretsalt', '$6$', '$y$']) expect(out).not.toContain(secret)
      expect(out).toMatch(/unknown field \\?"root\.\.\.\\?" \(\d+ characters/)
    }
  })
})

describe.concurrent('trust at the edges: commands that reach hosts', () => {
  test('--limit "" is exit 2 (it selected nothing), before any host is reached', async () => {
    const {file} = scratch(BASE)
    const run = await runCli(['provision', '-i', file, '--yes', '--limit', ''])
    expect(run.status, run.stderr).toBe(2)
    expect(run.stderr).toContain('selected nothing')
  })

  test('plan --json carries an acknowledged any-address source as a warning', async () => {
    // Hosts that fail fast (their jump host refuses): what matters is the envelope's warnings, whatever the exit.
    const text = edit(
      ['admin_cidrs: [198.51.100.0/24]', 'admin_cidrs: [0.0.0.0/0]\n  allow_any_source: {ssh: "break-glass access"}'],
      ['  identity_file: ~/.ssh/id_ed25519\n', ''],
      ['jump_host: deploy@bastion.foobar.com:22', 'jump_host: "127.0.0.1:9"'],
      ['  port: 22\n', '  port: 22\n  connect_timeout: 1\n'],
    )
    const {file} = scratch(text)
    const run = await runCli(['plan', '-i', file, '--json', '--limit', 'lb1'])
    const body = JSON.parse(run.stdout) as {warnings: string[]}
    expect(body.warnings).toContainEqual(expect.stringContaining('SSH on lb1, web1, web2 is open to any address'))
    expect(body.warnings).toContainEqual(expect.stringContaining('"break-glass access"'))
  })
})

describe('inventory check reads the files and secrets the inventory refers to (issue 16)', () => {
  test('a device as the SSH key, a missing secret: exit 2 listing each, field and path named; --no-files skips them', async () => {
    const {file} = scratch(BASE.replace(/identity_file: \S+/, 'identity_file: /dev/zero'))
    const run = await runCli(['inventory', 'check', '-i', file, '--json'])
    expect(run.status, run.stdout + run.stderr).toBe(2)
    const details: string[] = JSON.parse(run.stdout).error.details
    expect(details).toContainEqual(expect.stringMatching(/^ssh\.identity_file \(host \w+\): \/dev\/zero /))
    expect(details.join('\n')).toMatch(/mysql\.replication_password/)
    expect((await runCli(['inventory', 'check', '-i', file, '--no-files'])).status).toBe(0)
  })

  test("the app database's password (mysql.app) is read too", async () => {
    // The default app's account: without an app section of its own (mysql.app goes with the default app).
    const {file} = scratch(
      BASE.replace('  monitor_password: {file: secrets/monitor}\n', '  app: {password: {file: secrets/app-db}}\n').replace(
        'app:\n  upstream: 127.0.0.1:9000\n',
        '',
      ),
    )
    const run = await runCli(['inventory', 'check', '-i', file, '--json'])
    expect(run.status, run.stdout + run.stderr).toBe(2)
    const details: string[] = JSON.parse(run.stdout).error.details
    expect(details).toContainEqual(expect.stringMatching(/^mysql\.app\.password \(secret file\): .*secrets\/app-db/))
  })
})
