/*
 * The default app with mysql.app, for real: the rendered app.py runs under this machine's Debian python3 (with
 * python3-pymysql), against no database, against servers that misbehave, and against a throwaway MariaDB server
 * (mariadbd on a temp datadir, a loopback port and a temp socket, TLS from a CA made here; never the system
 * service) on which the app-db component's facts script and SQL make the account. Skipped with a message when a
 * tool is missing (a failure under CI=true); scripts/setup.sh installs them.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {request} from 'node:http'
import {type AddressInfo, type Server, type Socket, createServer} from 'node:net'
import {tmpdir, userInfo} from 'node:os'
import {delimiter, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {appDbFactsScript, appDbSql, parseAppDbFacts, planAppDb, wantedPrivileges} from '../../src/components/app-db/account.js'
import {convergeAppDb} from '../../src/components/app-db/index.js'
import {desiredState} from '../../src/components/index.js'
import type {Host, Inventory} from '../../src/inventory/index.js'
import type {RunOptions, RunResult, Runner} from '../../src/remote/runner.js'
import {TEST_MATERIAL, testInventory} from './support/fake-host.js'

const CI = process.env.CI === 'true'
const IS_ROOT = process.getuid?.() === 0
const PYTHON = '/usr/bin/python3'
const TMP = mkdtempSync(join(tmpdir(), 'foobar-app-py-'))
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  rmSync(TMP, {recursive: true, force: true, maxRetries: 5})
})

function which(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    try {
      accessSync(join(dir, bin), constants.X_OK)
      return join(dir, bin)
    } catch {
      // not here
    }
  }
  return undefined
}

/** Why this machine cannot run a part, or undefined; under CI=true a missing tool is a failure, not a skip. */
function missing(what: string, needs: Array<[string, boolean]>): string | undefined {
  const lacking = needs.filter(([, ok]) => !ok).map(([name]) => name)
  if (lacking.length === 0) return undefined
  const message = `${what}: not installed: ${lacking.join(', ')} (scripts/setup.sh installs them)`
  if (CI) throw new Error(`CI=true: ${message}`)
  console.warn(`SKIP ${message}`)
  return message
}

const hasPymysql = spawnSync(PYTHON, ['-c', 'import pymysql'], {encoding: 'utf8'}).status === 0
const noPython = missing('the Python app', [
  [PYTHON, existsSync(PYTHON)],
  ['python3-pymysql', hasPymysql],
  ['openssl', which('openssl') !== undefined],
])
const noMariadb =
  noPython ??
  missing('the app against MariaDB', [
    ['mariadbd', which('mariadbd') !== undefined],
    ['mariadb-install-db', which('mariadb-install-db') !== undefined],
    ['mariadb-client', which('mysql') !== undefined],
  ])

const PASSWORD = 'app-pw-0123456789'
const ENV = 'FOOBAR_TEST_APP_PY_PASSWORD'
process.env[ENV] = PASSWORD
process.env.FOOBAR_TEST_APP_PY_REPL = 'repl-secret-for-app-py-tests'

/** The lab-like inventory: web1 (primary) and web2 (replica) also serve the app; `extra` goes into mysql:. */
const inventory = (extra = '') =>
  testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web db', 'web2 10.77.0.13 web db'], {
    lean: true,
    yaml: `mysql: {primary: web1, replicas: [web2], replication_password: {env: FOOBAR_TEST_APP_PY_REPL}, app: {password: {env: ${ENV}}}${extra}}\n`,
  })
const hostOf = (inv: Inventory, name: string): Host => inv.hosts.find((h) => h.name === name)!

function openssl(args: string[], cwd: string) {
  const r = spawnSync('openssl', args, {cwd, encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
}

/** A CA of this test (PEM), made in `dir` as ca.pem and ca.key. */
function makeCa(dir: string): string {
  mkdirSync(dir, {recursive: true})
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=foobar test CA'], dir)
  return readFileSync(join(dir, 'ca.pem'), 'utf8')
}

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const {port} = s.address() as AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

interface Answer {
  status: number
  body: string
  type: string
}

function http(port: number, method: string, path: string, body?: string | Buffer, type?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {}
    if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body)
    if (type) headers['Content-Type'] = type
    const req = request({host: '127.0.0.1', port, method, path, headers, timeout: 15_000, agent: false}, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: text, type: String(res.headers['content-type'] ?? '')}))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

interface App {
  port: number
  stderr: () => string
  stop: () => void
}

/**
 * Starts the app.py that the app component renders for `inv` (web2), on a free port, with `patch` applied to it
 * (the database address of this test), and its credentials where systemd's LoadCredential would put them.
 */
async function startApp(inv: Inventory, patch: (text: string) => string, ca: string): Promise<App> {
  const rendered = desiredState(inv, hostOf(inv, 'web2'), {material: {...TEST_MATERIAL, internalCa: ca}}).files
  const app = rendered.find((f) => f.path === '/opt/foobar-app/app.py')!.content
  const port = await freePort()
  const dir = mkdtempSync(join(TMP, 'app-'))
  const creds = join(dir, 'credentials')
  mkdirSync(creds)
  writeFileSync(join(creds, 'db-password'), rendered.find((f) => f.path === '/etc/foobar/app/db-password')!.content, {mode: 0o600})
  writeFileSync(join(creds, 'db-ca'), ca)
  const listen = 'ThreadingHTTPServer(("127.0.0.1", 8080), Handler)'
  expect(app).toContain(listen)
  writeFileSync(join(dir, 'app.py'), patch(app).replace(listen, `ThreadingHTTPServer(("127.0.0.1", ${port}), Handler)`))
  const child = spawn(PYTHON, [join(dir, 'app.py')], {
    env: {PATH: '/usr/bin:/bin', CREDENTIALS_DIRECTORY: creds},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const t0 = Date.now()
  for (;;) {
    try {
      if ((await http(port, 'GET', '/healthz')).status === 200) break
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() - t0 > 15_000) throw new Error(`app.py did not start: ${stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return {port, stderr: () => stderr, stop: () => child.kill('SIGKILL')}
}

const setDb = (host: string, port: number) => (t: string) =>
  t.replace(/^DB_HOST = ".*"$/m, `DB_HOST = "${host}"`).replace(/^DB_PORT = \d+$/m, `DB_PORT = ${port}`)

/** A 503 JSON answer with only an error, and no Python traceback in it. */
function expectDatabaseError(a: Answer, reason: RegExp) {
  expect(a.status, a.body).toBe(503)
  expect(a.type).toBe('application/json')
  expect(a.body).not.toMatch(/Traceback|File "|pymysql|Error\(/)
  const parsed = JSON.parse(a.body) as Record<string, unknown>
  expect(Object.keys(parsed)).toEqual(['error'])
  expect(parsed.error).toMatch(reason)
}

describe.skipIf(noPython !== undefined)('the app without a working database', () => {
  let app: App
  let ca: string
  let silent: Server
  let silentPort: number
  const held: Socket[] = []

  beforeAll(async () => {
    ca = makeCa(join(TMP, 'ca'))
    // mysql.endpoint on a port where nothing listens: the database is down.
    app = await startApp(inventory(', endpoint: {port: 3306}'), setDb('127.0.0.1', await freePort()), ca)
    // A server that accepts and never says a word (a hung database).
    silent = createServer((s) => held.push(s))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    silentPort = (silent.address() as AddressInfo).port
  }, 30_000)
  afterAll(() => {
    app?.stop()
    held.forEach((s) => s.destroy())
    silent?.close()
  })

  test("/healthz is the web server's own health (200 with the database down); / is the page; anything else 404", async () => {
    const h = await http(app.port, 'GET', '/healthz')
    expect(h.status).toBe(200)
    expect(h.body).toMatch(/^ok \S+\n$/)
    expect((await http(app.port, 'GET', '/')).status).toBe(200)
    for (const path of ['/nope', '/api', '/api/notes/1', '/readyz/x']) expect((await http(app.port, 'GET', path)).status, path).toBe(404)
    expect((await http(app.port, 'POST', '/healthz', 'x')).status).toBe(404)
    expect((await http(app.port, 'GET', '/api/notes')).status).toBe(405)
  })

  test('/readyz is 503 with the reason; the notes API answers 503 JSON, never a traceback', async () => {
    const r = await http(app.port, 'GET', '/readyz')
    expect(r.status).toBe(503)
    expect(r.body).toBe('not ready: cannot connect to the database\n')
    expectDatabaseError(await http(app.port, 'POST', '/api/notes', 'hello'), /^database unavailable: cannot connect to the database$/)
    expectDatabaseError(await http(app.port, 'GET', '/api/notes/count'), /^database unavailable: /)
    // The details are the operator's, in the journal (stderr).
    expect(app.stderr()).toMatch(/OperationalError\(2003/)
  })

  test('a bad note is 400 before the database is asked: too long, not UTF-8, a JSON body that is not a string', async () => {
    const bad = async (body: string | Buffer, type?: string) => {
      const a = await http(app.port, 'POST', '/api/notes', body, type)
      expect(a.status, String(body)).toBe(400)
      return (JSON.parse(a.body) as {error: string}).error
    }
    expect(await bad('x'.repeat(201))).toBe('the note is too long (at most 200 characters)')
    expect(await bad(JSON.stringify({body: 'y'.repeat(201)}), 'application/json')).toBe('the note is too long (at most 200 characters)')
    expect(await bad(JSON.stringify({body: 5}), 'application/json')).toBe('"body" must be a string')
    expect(await bad('{nope', 'application/json')).toBe('the body is not JSON')
    expect(await bad(Buffer.from([0xff, 0xfe]))).toBe('the note must be UTF-8 text')
  })

  test('a database that hangs: /readyz answers 503 within the 2 s it allows (and a bit)', async () => {
    const hung = await startApp(inventory(', endpoint: {port: 3306}'), setDb('127.0.0.1', silentPort), ca)
    try {
      const t0 = Date.now()
      const r = await http(hung.port, 'GET', '/readyz')
      const took = Date.now() - t0
      expect(r.status).toBe(503)
      expect(r.body).toBe('not ready: the database timed out\n')
      expect(took).toBeGreaterThanOrEqual(1900)
      expect(took).toBeLessThan(4500)
    } finally {
      hung.stop()
    }
  })

  test('a server that offers no TLS gets no credentials: the app hangs up after its greeting', async () => {
    let received = 0
    const plain = createServer((s) => {
      s.on('data', (d) => (received += d.length))
      s.on('error', () => {})
      s.write(greeting())
    })
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    const noTls = await startApp(inventory(', endpoint: {port: 3306}'), setDb('127.0.0.1', (plain.address() as AddressInfo).port), ca)
    try {
      expect(await http(noTls.port, 'GET', '/readyz')).toMatchObject({status: 503, body: 'not ready: TLS to the database failed\n'})
      expectDatabaseError(await http(noTls.port, 'POST', '/api/notes', 'x'), /TLS to the database failed/)
      expect(received).toBe(0)
      expect(noTls.stderr()).toMatch(/2026, 'the database server does not offer TLS'/)
    } finally {
      noTls.stop()
      plain.close()
    }
  })
})

/** A MySQL protocol 10 greeting whose capabilities leave out CLIENT_SSL (a plaintext-only server, or an impostor). */
function greeting(): Buffer {
  const caps = 0xffff & ~0x0800
  const payload = Buffer.concat([
    Buffer.from([10]),
    Buffer.from('5.5.5-10.11.0-fake\0'),
    Buffer.from([1, 0, 0, 0]),
    Buffer.from('abcdefgh'),
    Buffer.from([0]),
    Buffer.from([caps & 0xff, caps >> 8]),
    Buffer.from([33, 2, 0]),
    Buffer.from([0xff, 0x81]),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.from('ijklmnopqrst\0'),
    Buffer.from('mysql_native_password\0'),
  ])
  const header = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, 0])
  return Buffer.concat([header, payload])
}

/* ---- A throwaway MariaDB server ---- */

interface Mariadb {
  port: number
  ca: string
  /** A CA that did not sign the server's certificate. */
  otherCa: string
  /** Runs a shell script as foobar would on the host (mysql and mysqladmin reach this server's socket). */
  runner: (host: Host) => Runner
  sql: (statements: string) => string
}

async function startMariadb(dir: string): Promise<Mariadb> {
  // The server's certificate from a CA of this test, for 127.0.0.1 and db1 (not localhost).
  const ca = makeCa(dir)
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'db.key', '-out', 'db.csr', '-subj', '/CN=db1'],
    dir,
  )
  writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:db1,IP:127.0.0.1\n')
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'db.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'db.pem',
      '-days',
      '2',
      '-extfile',
      'ext',
    ],
    dir,
  )
  const user = userInfo().username
  const data = join(dir, 'data')
  const install = spawnSync(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${data}`, `--user=${user}`, '--auth-root-authentication-method=socket', '--skip-test-db'],
    {encoding: 'utf8', timeout: 60_000},
  )
  if (install.status !== 0) throw new Error(`mariadb-install-db: ${install.stderr}`)
  const port = await freePort()
  const socket = join(dir, 'mysqld.sock')
  const server = spawn(
    which('mariadbd')!,
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      `--log-error=${join(dir, 'error.log')}`,
      `--ssl-ca=${join(dir, 'ca.pem')}`,
      `--ssl-cert=${join(dir, 'db.pem')}`,
      `--ssl-key=${join(dir, 'db.key')}`,
      '--innodb-buffer-pool-size=16M',
      '--skip-name-resolve',
      ...(IS_ROOT ? ['--user=root'] : []),
    ],
    {stdio: 'ignore'},
  )
  children.push(server)
  // mysql and mysqladmin as the facts script and the SQL call them, but at this server (the system's is untouched).
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  for (const tool of ['mysql', 'mysqladmin'])
    writeFileSync(join(bin, tool), `#!/bin/sh\nexec ${which(tool)} --no-defaults --socket=${socket} "$@"\n`, {mode: 0o755})
  const env = {...process.env, PATH: `${bin}${delimiter}${process.env.PATH}`}
  const sh = (script: string, stdin?: string) => spawnSync('bash', ['-c', script], {input: stdin, env, encoding: 'utf8', timeout: 30_000})
  const t0 = Date.now()
  while (sh('mysqladmin --connect-timeout=1 ping').status !== 0) {
    if (server.exitCode !== null || Date.now() - t0 > 60_000)
      throw new Error(`mariadbd did not start: ${readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  const runner = (host: Host): Runner =>
    ({
      host,
      async run(script: string, o: RunOptions = {}): Promise<RunResult> {
        const r = sh(script, o.stdin)
        const result = {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
        if ((o.check ?? true) && result.code !== 0) throw new Error(`${host.name}: exit ${result.code}: ${result.stderr}`)
        return result
      },
    }) as unknown as Runner
  return {
    port,
    ca,
    otherCa: makeCa(join(dir, 'other')),
    runner,
    sql: (statements) => {
      const r = sh('mysql -N -B', statements)
      if (r.status !== 0) throw new Error(r.stderr)
      return r.stdout
    },
  }
}

describe.skipIf(noMariadb !== undefined)('the app and its account on a real MariaDB', () => {
  let db: Mariadb
  const inv = inventory()
  const web1 = hostOf(inv, 'web1')
  const S = {user: 'foobar_app', database: 'foobar_app'}
  const facts = async () => parseAppDbFacts((await db.runner(web1).run(appDbFactsScript(S))).stdout.split('\n').filter(Boolean))
  const plan = async () => planAppDb(inv, web1, await facts(), PASSWORD)
  const converge = () =>
    convergeAppDb(
      inv,
      [web1],
      async (h) => db.runner(h),
      PASSWORD,
      () => {},
    )

  beforeAll(async () => {
    db = await startMariadb(mkdtempSync(join(TMP, 'mariadb-')))
  }, 120_000)

  test('the primary from nothing: database, table, accounts, grants; a second plan is empty; exactly SELECT and INSERT', async () => {
    expect(await plan()).toEqual([
      {kind: 'schema', database: 'foobar_app', table: true},
      {kind: 'accounts', hosts: ['10.77.0.12', '10.77.0.13']},
      {kind: 'grants', hosts: ['10.77.0.12', '10.77.0.13']},
    ])
    expect(await converge()).toEqual({})
    expect(await plan()).toEqual([])
    const f = await facts()
    expect(f.privileges).toEqual({'10.77.0.12': wantedPrivileges('foobar_app'), '10.77.0.13': wantedPrivileges('foobar_app')})
    expect(f.accounts.map((a) => a.ssl)).toEqual(['ANY', 'ANY'])
    expect(db.sql("SHOW GRANTS FOR 'foobar_app'@'10.77.0.13'")).toMatch(
      /^GRANT USAGE ON \*\.\* TO `foobar_app`@`10\.77\.0\.13` IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}' REQUIRE SSL\nGRANT SELECT, INSERT ON `foobar_app`\.`notes` TO `foobar_app`@`10\.77\.0\.13`\n$/,
    )
  })

  test('drift is found and undone: an extra privilege, a changed password, a stale address; a read-only server is left alone', async () => {
    await converge()
    db.sql(
      [
        "GRANT DELETE ON foobar_app.notes TO 'foobar_app'@'10.77.0.12';",
        "GRANT PROCESS ON *.* TO 'foobar_app'@'10.77.0.13';",
        "ALTER USER 'foobar_app'@'10.77.0.13' IDENTIFIED BY 'another-password';",
        "CREATE USER 'foobar_app'@'10.77.0.99' IDENTIFIED BY 'x';",
      ].join('\n'),
    )
    expect(await plan()).toEqual([
      {kind: 'accounts', hosts: ['10.77.0.13']},
      {kind: 'grants', hosts: ['10.77.0.12', '10.77.0.13']},
      {kind: 'drop', hosts: ['10.77.0.99']},
    ])
    expect(await converge()).toEqual({})
    expect(await plan()).toEqual([])
    db.sql('SET GLOBAL read_only = 1;')
    try {
      expect(await plan()).toEqual([])
      db.sql("DROP USER 'foobar_app'@'10.77.0.12';")
      expect(await plan()).toEqual([{kind: 'read-only'}])
      expect((await converge()).web1).toMatch(/read-only/)
    } finally {
      db.sql('SET GLOBAL read_only = 0;')
    }
    expect(await converge()).toEqual({})
  })

  test('the app stores notes: 201 with the id after COMMIT, the count follows; /readyz 200; TLS verified against the CA', async () => {
    await converge()
    // The account for this machine's loopback address, made by the same SQL (the app connects from 127.0.0.1 here).
    db.sql(
      appDbSql(
        [
          {kind: 'accounts', hosts: ['127.0.0.1']},
          {kind: 'grants', hosts: ['127.0.0.1']},
        ],
        S,
        PASSWORD,
        false,
      ),
    )
    const app = await startApp(inventory(`, endpoint: {port: ${db.port}}`), (t) => t, db.ca)
    try {
      expect(await http(app.port, 'GET', '/readyz')).toMatchObject({status: 200, body: 'ready\n'})
      const before = JSON.parse((await http(app.port, 'GET', '/api/notes/count')).body) as {count: number}
      const ids: number[] = []
      for (const [body, type] of [
        ['first'],
        [JSON.stringify({body: 'zweite Notiz ✓'}), 'application/json'],
        [''],
        [JSON.stringify({}), 'application/json'],
      ] as const) {
        const a = await http(app.port, 'POST', '/api/notes', body, type)
        expect(a.status, a.body).toBe(201)
        const note = JSON.parse(a.body) as {id: number; host: string}
        expect(note.host).toMatch(/\S/)
        ids.push(note.id)
      }
      expect(ids).toEqual([...ids].sort((a, b) => a - b))
      expect(new Set(ids).size).toBe(4)
      expect(JSON.parse((await http(app.port, 'GET', '/api/notes/count')).body)).toEqual({count: before.count + 4})
      expect(db.sql(`SELECT body FROM foobar_app.notes WHERE id IN (${ids.join(',')}) ORDER BY id`)).toBe(
        'first\nzweite Notiz ✓\nNULL\nNULL\n',
      )
      // The account can do nothing else: a failed statement is a 503 JSON answer, not a traceback.
      db.sql("REVOKE INSERT ON foobar_app.notes FROM 'foobar_app'@'127.0.0.1';")
      expectDatabaseError(await http(app.port, 'POST', '/api/notes', 'x'), /^database unavailable: not permitted$/)
      db.sql('SET GLOBAL read_only = 1;')
      db.sql("GRANT INSERT ON foobar_app.notes TO 'foobar_app'@'127.0.0.1';")
      expectDatabaseError(await http(app.port, 'POST', '/api/notes', 'x'), /read-only \(not the writer\)/)
      db.sql('SET GLOBAL read_only = 0;')
      expect(JSON.parse((await http(app.port, 'GET', '/api/notes/count')).body)).toEqual({count: before.count + 4})
    } finally {
      app.stop()
    }
    // A server certificate from another CA: refused, even though no name is checked through the endpoint.
    const other = await startApp(inventory(`, endpoint: {port: ${db.port}}`), (t) => t, db.otherCa)
    try {
      expect(await http(other.port, 'GET', '/readyz')).toMatchObject({status: 503, body: 'not ready: TLS to the database failed\n'})
      expect(other.stderr()).toMatch(/CERTIFICATE_VERIFY_FAILED/)
    } finally {
      other.stop()
    }
  })

  test("directly to the primary the server's name is verified too: its address matches, another name does not", async () => {
    await converge()
    db.sql(
      appDbSql(
        [
          {kind: 'accounts', hosts: ['127.0.0.1']},
          {kind: 'grants', hosts: ['127.0.0.1']},
        ],
        S,
        PASSWORD,
        false,
      ),
    )
    const byAddress = await startApp(inventory(), setDb('127.0.0.1', db.port), db.ca)
    const byName = await startApp(inventory(), setDb('localhost', db.port), db.ca)
    try {
      expect(await http(byAddress.port, 'GET', '/readyz')).toMatchObject({status: 200, body: 'ready\n'})
      expect(await http(byName.port, 'GET', '/readyz')).toMatchObject({status: 503, body: 'not ready: TLS to the database failed\n'})
      expect(byName.stderr()).toMatch(/certificate is not valid for 'localhost'/)
    } finally {
      byAddress.stop()
      byName.stop()
    }
  })
})
