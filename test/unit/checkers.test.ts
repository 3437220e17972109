/*
 * The real daemons' own checkers on what foobar renders for both example inventories: nginx -t, haproxy -c,
 * iptables-restore/ip6tables-restore --test (in a throwaway network namespace), mariadbd's option check and
 * ufw --dry-run. Nothing here starts a daemon or touches the machine's firewall.
 *
 * A missing checker (or not being root where one needs it) skips with a message, except under CI=true, where it
 * fails: CI installs them (.ci/run), so a skip there would hide a broken config.
 */
import {spawnSync, type SpawnSyncReturns} from 'node:child_process'
import {accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {afterAll, describe, expect, test, type TestContext} from 'vitest'
import {IPTABLES_V4_FILE, IPTABLES_V6_FILE, UFW_RULES_FILE} from '../../src/components/firewall/index.js'
import {HAPROXY_CFG} from '../../src/components/haproxy/index.js'
import {desiredState} from '../../src/components/index.js'
import {KEEPALIVED_CONF} from '../../src/components/keepalived/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {TLS_PATHS} from '../../src/components/tls/profile.js'
import {EXAMPLES, fileOf, iptablesVariant, loadExample, renderAll} from './support/render.js'

const CI = process.env.CI === 'true'
const IS_ROOT = process.getuid?.() === 0
const TMP = mkdtempSync(join(tmpdir(), 'foobar-checkers-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

/** Full path of a binary on PATH or in the sbin directories (a non-root PATH often lacks them). */
function which(bin: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs) {
    const path = join(dir, bin)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // not here
    }
  }
  return undefined
}

/** The binaries a test needs, or a skip (a failure under CI=true) that says what is missing. */
function requireTools(ctx: TestContext, bins: string[], needRoot = false): Record<string, string> {
  const found: Record<string, string> = {}
  const missing: string[] = []
  for (const b of bins) {
    const p = which(b)
    if (p) found[b] = p
    else missing.push(b)
  }
  const problems = [...(missing.length ? [`not installed: ${missing.join(', ')}`] : []), ...(needRoot && !IS_ROOT ? ['needs root'] : [])]
  if (problems.length > 0) {
    const message = `real checker unavailable (${problems.join('; ')}); install nginx haproxy mariadb-server iptables ufw keepalived openssl and run as root`
    if (CI) throw new Error(`CI=true: ${message}`)
    console.warn(`SKIP ${ctx.task.name}: ${message}`)
    ctx.skip(message)
  }
  return found
}

function run(cmd: string, args: string[], input?: string): SpawnSyncReturns<string> & {output2: string} {
  const r = spawnSync(cmd, args, {encoding: 'utf8', input, timeout: 30_000})
  if (r.error) throw r.error
  return Object.assign(r, {output2: `${r.stdout ?? ''}${r.stderr ?? ''}`})
}

/*
 * Rendered files for both examples (ufw and iptables variants), with the absolute paths they reference on a host
 * moved into the temp dir: TLS material generated here, the HAProxy stats socket.
 */
// lab-ha.yml too: its load balancers' haproxy.cfg (the local serving path) and their VRRP firewall rules; and
// lab-monitoring.yml: the lab's monitoring host (Prometheus, alert rules, Alertmanager, blackbox) through the checkers.
const RENDERED = [...EXAMPLES, 'lab-ha' as const, 'lab-monitoring' as const].map((name) => ({
  name,
  ufw: renderAll(loadExample(name)),
  iptables: renderAll(loadExample(name, iptablesVariant)),
}))
const TLS_DIR = join(TMP, 'tls')

function localise(content: string): string {
  expect(content).not.toContain(TMP) // sanity: the rewrite below is the only way TMP gets in
  return content.replaceAll(`${TLS_PATHS.dir}/`, `${TLS_DIR}/`).replaceAll('/run/haproxy/admin.sock', join(TMP, 'admin.sock'))
}

let tlsReady: string | undefined
/** A CA, a site certificate signed by it and the bundles, at the names foobar uses (once, lazily). */
function makeTls(ctx: TestContext): void {
  if (tlsReady === TLS_DIR) return
  const {openssl} = requireTools(ctx, ['openssl'])
  mkdirSync(TLS_DIR, {recursive: true})
  const o = (...args: string[]) => {
    const r = run(openssl!, args)
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.output2}`)
  }
  const p = (name: string) => join(TLS_DIR, name)
  o(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    p('ca.key'),
    '-out',
    p('backend-ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=foobar test CA',
  )
  o(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    p('site.key'),
    '-out',
    p('site.csr'),
    '-subj',
    '/CN=www.foobar.com',
  )
  writeFileSync(p('san.ext'), 'subjectAltName=DNS:www.foobar.com,DNS:foobar.com,DNS:www.foobar.test,DNS:foobar.test\n')
  o(
    'x509',
    '-req',
    '-in',
    p('site.csr'),
    '-CA',
    p('backend-ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('san.ext'),
    '-out',
    p('site.crt'),
  )
  writeFileSync(p('site.pem'), readFileSync(p('site.crt'), 'utf8') + readFileSync(p('site.key'), 'utf8'))
  writeFileSync(p('db-ca.pem'), readFileSync(p('backend-ca.pem'), 'utf8'))
  writeFileSync(p('db.crt'), readFileSync(p('site.crt'), 'utf8'))
  writeFileSync(p('db.key'), readFileSync(p('site.key'), 'utf8'), {mode: 0o600})
  for (const f of Object.values(TLS_PATHS).filter((x) => x !== TLS_PATHS.dir)) statSync(join(TLS_DIR, f.slice(TLS_PATHS.dir.length + 1)))
  tlsReady = TLS_DIR
}

let seq = 0
const scratch = (label: string) => {
  const dir = join(TMP, `${label}-${seq++}`)
  mkdirSync(dir, {recursive: true})
  return dir
}

// ---------------------------------------------------------------------------------------------------- nginx

function nginxCheck(nginx: string, site: string): SpawnSyncReturns<string> & {output2: string} {
  const dir = scratch('nginx')
  writeFileSync(join(dir, 'foobar.conf'), site)
  writeFileSync(
    join(dir, 'nginx.conf'),
    `events {}\nhttp {\n    include /etc/nginx/mime.types;\n    include ${join(dir, 'foobar.conf')};\n}\n`,
  )
  return run(nginx, [
    '-t',
    '-c',
    join(dir, 'nginx.conf'),
    '-p',
    `${dir}/`,
    '-g',
    `pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};`,
  ])
}

describe('nginx -t', () => {
  for (const {name, ufw} of RENDERED) {
    for (const host of ['web1', 'web2']) {
      test(`${name}: ${host}${NGINX_SITE}`, (ctx) => {
        const {nginx} = requireTools(ctx, ['nginx', 'openssl'])
        makeTls(ctx)
        const site = fileOf(ufw, host, NGINX_SITE)
        expect(site).toContain(TLS_PATHS.cert)
        const r = nginxCheck(nginx!, localise(site))
        expect(r.status, r.output2).toBe(0)
        expect(r.output2).toMatch(/test is successful/)
      })
    }
  }

  // The inventory's own app (issue 21): proxied to host:port or a unix socket, or a static root.
  const APPS = {
    // A DNS name must resolve on the web server when nginx loads (nginx resolves upstreams then).
    'upstream host:port': 'app: {upstream: "localhost:9000", health: /health}',
    'upstream unix socket': 'app: {upstream: "unix:/run/myapp/app.sock", health: /status/ready}',
    root: 'app: {root: /srv/www/site}',
  }
  for (const [label, app] of Object.entries(APPS)) {
    test(`lab with app ${label}: web1${NGINX_SITE}`, (ctx) => {
      const {nginx} = requireTools(ctx, ['nginx', 'openssl'])
      makeTls(ctx)
      const inv = loadExample('lab', (t) => t.replace('  health_check: /healthz\n', '').replace('\nhosts:\n', `\n${app}\n\nhosts:\n`))
      const r = nginxCheck(nginx!, localise(fileOf(renderAll(inv), 'web1', NGINX_SITE)))
      expect(r.status, r.output2).toBe(0)
      expect(r.output2).toMatch(/test is successful/)
    })
  }

  test('negative: nginx -t rejects an injected directive, a syntax error and a missing certificate', (ctx) => {
    const {nginx} = requireTools(ctx, ['nginx', 'openssl'])
    makeTls(ctx)
    const site = localise(fileOf(RENDERED[0]!.ufw, 'web1', NGINX_SITE))
    const injected = site.replace('server_name www.foobar.com foobar.com;', 'server_name www.foobar.com; include /etc/passwd;')
    expect(injected).not.toBe(site)
    const injectedRun = nginxCheck(nginx!, injected)
    expect(injectedRun.status).not.toBe(0)
    expect(injectedRun.output2).toMatch(/\/etc\/passwd/)
    const noSemicolon = nginxCheck(nginx!, site.replace('proxy_pass http://foobar_app;', 'proxy_pass http://foobar_app'))
    expect(noSemicolon.status).not.toBe(0)
    const noCert = nginxCheck(nginx!, site.replaceAll(`${TLS_DIR}/site.crt`, `${TMP}/missing.crt`))
    expect(noCert.status).not.toBe(0)
    expect(noCert.output2).toMatch(/missing\.crt/)
  })
})

// -------------------------------------------------------------------------------------------------- haproxy

function haproxyCheck(haproxy: string, cfg: string): SpawnSyncReturns<string> & {output2: string} {
  const file = join(scratch('haproxy'), 'haproxy.cfg')
  writeFileSync(file, cfg)
  return run(haproxy, ['-c', '-f', file])
}

describe('haproxy -c', () => {
  for (const {name, ufw} of RENDERED) {
    test(`${name}: lb1${HAPROXY_CFG}`, (ctx) => {
      const {haproxy} = requireTools(ctx, ['haproxy', 'openssl'])
      makeTls(ctx)
      const cfg = fileOf(ufw, 'lb1', HAPROXY_CFG)
      expect(cfg).toContain(TLS_PATHS.haproxyBundle)
      const r = haproxyCheck(haproxy!, localise(cfg))
      expect(r.status, r.output2).toBe(0)
      expect(r.output2).toMatch(/Configuration file is valid/)
      expect(r.output2).not.toMatch(/\[WARNING\]/)
    })
  }

  test('negative: haproxy -c rejects a bad keyword and a missing CA file', (ctx) => {
    const {haproxy} = requireTools(ctx, ['haproxy', 'openssl'])
    makeTls(ctx)
    const cfg = localise(fileOf(RENDERED[0]!.ufw, 'lb1', HAPROXY_CFG))
    const badBalance = haproxyCheck(haproxy!, cfg.replace('balance roundrobin', 'balance roundrobinn'))
    expect(badBalance.status).not.toBe(0)
    expect(badBalance.output2).toMatch(/balance only supports/)
    const noCa = haproxyCheck(haproxy!, cfg.replaceAll(`${TLS_DIR}/backend-ca.pem`, `${TMP}/missing-ca.pem`))
    expect(noCa.status).not.toBe(0)
    expect(noCa.output2).toMatch(/missing-ca\.pem/)
  })
})

// ------------------------------------------------------------------------------------------------- iptables

describe('iptables-restore --test / ip6tables-restore --test (in a throwaway network namespace)', () => {
  const NETNS = `foobar-check-${process.pid}`
  let netnsState: 'none' | 'created' | 'failed' = 'none'
  let netnsError = ''

  const ensureNetns = (ctx: TestContext) => {
    const tools = requireTools(ctx, ['ip', 'iptables-restore', 'ip6tables-restore'], true)
    if (netnsState === 'none') {
      const r = run(tools.ip!, ['netns', 'add', NETNS])
      netnsState = r.status === 0 ? 'created' : 'failed'
      netnsError = r.output2
    }
    if (netnsState === 'failed') {
      const message = `cannot create network namespace ${NETNS}: ${netnsError.trim()}`
      if (CI) throw new Error(`CI=true: ${message}`)
      ctx.skip(message)
    }
    return tools
  }
  const restoreTest = (tools: Record<string, string>, binary: 'iptables-restore' | 'ip6tables-restore', rules: string) =>
    run(tools.ip!, ['netns', 'exec', NETNS, tools[binary]!, '--test'], rules)

  afterAll(async () => {
    if (netnsState !== 'created') return
    const ip = which('ip')!
    // A namespace whose last process is still exiting can refuse deletion for a moment (a loaded machine): retried.
    let r = run(ip, ['netns', 'delete', NETNS])
    for (let i = 0; i < 10 && r.status !== 0 && run(ip, ['netns', 'list']).stdout.includes(NETNS); i++) {
      await new Promise((done) => setTimeout(done, 200))
      r = run(ip, ['netns', 'delete', NETNS])
    }
    if (r.status !== 0 && run(ip, ['netns', 'list']).stdout.includes(NETNS))
      throw new Error(`could not delete network namespace ${NETNS}: ${r.output2}`)
    expect(run(ip, ['netns', 'list']).stdout).not.toContain(NETNS)
  })

  for (const {name, iptables} of RENDERED) {
    for (const host of ['lb1', 'web1', 'web2']) {
      test(`${name}: ${host} rules.v4 and rules.v6`, (ctx) => {
        const tools = ensureNetns(ctx)
        for (const [binary, path] of [
          ['iptables-restore', IPTABLES_V4_FILE],
          ['ip6tables-restore', IPTABLES_V6_FILE],
        ] as const) {
          const rules = fileOf(iptables, host, path)
          expect(rules).toContain('*filter')
          const r = restoreTest(tools, binary, rules)
          expect(r.status, `${binary} ${path}:\n${r.output2}`).toBe(0)
        }
      })
    }
  }

  test('negative: a port out of range and a v4 source in rules.v6 are rejected', (ctx) => {
    const tools = ensureNetns(ctx)
    const v4 = fileOf(RENDERED[0]!.iptables, 'web1', IPTABLES_V4_FILE)
    const badPort = restoreTest(tools, 'iptables-restore', v4.replace('--dport 443 ', '--dport 70000 '))
    expect(badPort.status).not.toBe(0)
    expect(badPort.output2).toMatch(/70000/)
    const v6 = fileOf(RENDERED[0]!.iptables, 'lb1', IPTABLES_V6_FILE)
    const badSource = restoreTest(
      tools,
      'ip6tables-restore',
      v6.replace('-A INPUT -p tcp -m tcp --dport 443', '-A INPUT -s 203.0.113.10/32 -p tcp -m tcp --dport 443'),
    )
    expect(badSource.status).not.toBe(0)
  })
})

// -------------------------------------------------------------------------------------------------- MariaDB

function mariadbCheck(mariadbd: string, cnf: string): SpawnSyncReturns<string> & {output2: string} {
  const file = join(scratch('mariadb'), 'foobar.cnf')
  writeFileSync(file, cnf)
  return run(mariadbd, [`--defaults-file=${file}`, '--help', '--verbose'])
}

describe("mariadbd --help --verbose (the server's own option check)", () => {
  const CNF = '/etc/mysql/mariadb.conf.d/60-foobar.cnf'
  for (const {name, ufw} of RENDERED) {
    for (const host of ['web1', 'web2']) {
      test(`${name}: ${host}${CNF}`, (ctx) => {
        const {mariadbd} = requireTools(ctx, ['mariadbd'])
        const cnf = fileOf(ufw, host, CNF)
        const r = mariadbCheck(mariadbd!, cnf)
        expect(r.status, r.stderr).toBe(0)
        expect(r.stderr).not.toMatch(/\[ERROR\]|unknown (variable|option)/i)
        // The server read our file: the effective values show our settings.
        const serverId = /^server_id = (\d+)$/m.exec(cnf)![1]
        expect(r.stdout).toMatch(new RegExp(`^server-id\\s+${serverId}$`, 'm'))
        expect(r.stdout).toMatch(/^binlog-format\s+ROW$/m)
        expect(r.stdout).toMatch(/^gtid-strict-mode\s+TRUE$/m)
        expect(r.stdout).toMatch(new RegExp(`^read-only\\s+${host === 'web2' ? 'ON|TRUE' : 'OFF|FALSE'}$`, 'm'))
      })
    }
  }

  test('negative: an unknown variable and a bad value make mariadbd exit non-zero', (ctx) => {
    const {mariadbd} = requireTools(ctx, ['mariadbd'])
    const cnf = fileOf(RENDERED[0]!.ufw, 'web1', CNF)
    const unknown = mariadbCheck(mariadbd!, cnf.replace('binlog_format = ROW', 'binlog_format = ROW\nnot_a_real_option = 1'))
    expect(unknown.status).not.toBe(0)
    expect(unknown.stderr).toMatch(/unknown variable 'not_a_real_option=1'/)
    const badValue = mariadbCheck(mariadbd!, cnf.replace('binlog_format = ROW', 'binlog_format = SIDEWAYS'))
    expect(badValue.status).not.toBe(0)
  })
})

// ------------------------------------------------------------------------------------------------------ ufw

const ufwLines = (rules: string) => rules.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))

function ufwDryRun(line: string): SpawnSyncReturns<string> & {output2: string} {
  // Each line is shell-quoted ufw arguments, as `foobar firewall apply` runs them.
  return run('sh', ['-c', `exec ufw --dry-run ${line}`])
}

describe('ufw --dry-run on every line of ufw.rules', () => {
  const userRules = '/etc/ufw/user.rules'
  for (const {name, ufw} of RENDERED) {
    test(`${name}: every host's ufw.rules`, (ctx) => {
      requireTools(ctx, ['ufw'], true)
      const before = statSync(userRules, {throwIfNoEntry: false})?.mtimeMs
      const lines = new Set([...ufw.values()].flatMap((files) => ufwLines(files.find((f) => f.path === UFW_RULES_FILE)!.content)))
      expect(lines.size).toBeGreaterThan(8)
      for (const line of lines) {
        const r = ufwDryRun(line)
        expect(r.status, `ufw --dry-run ${line}\n${r.output2}`).toBe(0)
        expect(r.output2).not.toMatch(/ERROR/)
      }
      // --dry-run changed nothing on this machine.
      expect(statSync(userRules, {throwIfNoEntry: false})?.mtimeMs).toBe(before)
    })
  }

  test('negative: ufw rejects a bad port, a bad source and broken quoting', (ctx) => {
    requireTools(ctx, ['ufw'], true)
    const line = ufwLines(fileOf(RENDERED[0]!.ufw, 'web1', UFW_RULES_FILE)).find((l) => l.includes('port 443'))!
    expect(ufwDryRun(line).status).toBe(0)
    expect(ufwDryRun(line.replace('port 443', 'port 70000')).status).not.toBe(0)
    expect(ufwDryRun(line.replace('203.0.113.10/32', '203.0.113.10/33')).status).not.toBe(0)
    expect(ufwDryRun(line.replace("comment 'https", "comment 'it's")).status).not.toBe(0)
  })
})

// ----------------------------------------------------------------------------------------------- keepalived

describe('keepalived -t (two load balancers, lab-ha.yml; in a throwaway network namespace with an eth0)', () => {
  const NETNS = `foobar-ka-${process.pid}`
  const ENV = 'FOOBAR_CHECKERS_VRRP'
  let made = false
  afterAll(() => {
    delete process.env[ENV]
    if (made) run(which('ip')!, ['netns', 'delete', NETNS])
  })

  /** lb's keepalived.conf as provisioned (eth0 holds its address on a /24), its scripts moved into the temp dir. */
  function rendered(lb: string, edit: (text: string) => string = (t) => t): string {
    process.env[ENV] = 'vrrp-pw1'
    const inv = loadExample('lab-ha', (t) => edit(t.replace('{file: /var/lib/foobar-lab/secrets/vrrp_password}', `{env: ${ENV}}`)))
    const host = inv.hosts.find((h) => h.name === lb)!
    const line = `2: eth0    inet ${host.address}/24 brd 10.77.0.255 scope global eth0\\       valid_lft forever preferred_lft forever`
    const material = {siteChain: '', siteKey: '', backendCa: '', internalCa: '', leaves: {}}
    const files = desiredState(inv, host, {material, discovered: {keepalived: [line]}}).files
    const dir = scratch('keepalived')
    const local = (text: string) => text.replaceAll('/etc/keepalived/', `${dir}/`)
    for (const f of files.filter((x) => x.path.startsWith('/etc/keepalived/foobar-'))) {
      writeFileSync(join(dir, f.path.split('/').pop()!), local(f.content), {mode: f.mode})
    }
    return local(files.find((f) => f.path === KEEPALIVED_CONF)!.content)
  }

  function keepalivedCheck(ctx: TestContext, conf: string): SpawnSyncReturns<string> & {output2: string} {
    const tools = requireTools(ctx, ['ip', 'keepalived'], true)
    if (!made) {
      const r = run(tools.ip!, ['netns', 'add', NETNS])
      if (r.status !== 0) throw new Error(`cannot create network namespace ${NETNS}: ${r.output2}`)
      made = true
      const veth = run(tools.ip!, ['-n', NETNS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth9'])
      if (veth.status !== 0) throw new Error(`cannot add eth0 in ${NETNS}: ${veth.output2}`)
    }
    const file = join(scratch('keepalived-conf'), 'keepalived.conf')
    writeFileSync(file, conf, {mode: 0o640})
    return run(tools.ip!, ['netns', 'exec', NETNS, tools.keepalived!, '-t', '-f', file])
  }

  for (const lb of ['lb1', 'lb2']) {
    test(`lab-ha: ${lb}${KEEPALIVED_CONF}`, (ctx) => {
      const conf = rendered(lb)
      expect(conf).toContain('auth_pass vrrp-pw1')
      const r = keepalivedCheck(ctx, conf)
      expect(r.status, r.output2).toBe(0)
      expect(r.output2).toBe('')
    })
  }

  test('preemptive (lb.vrrp.preempt: true): valid too', (ctx) => {
    const conf = rendered('lb1', (t) => t.replace('preempt: false', 'preempt: true'))
    expect(conf).not.toMatch(/^\s*nopreempt$/m)
    const r = keepalivedCheck(ctx, conf)
    expect(r.status, r.output2).toBe(0)
  })

  test('negative: keepalived -t rejects an unknown keyword, an interface the host lacks and a missing track script', (ctx) => {
    const conf = rendered('lb1')
    const keyword = keepalivedCheck(ctx, conf.replace('advert_int 1', 'advert_intt 1'))
    expect(keyword.status).not.toBe(0)
    expect(keyword.output2).toMatch(/Unknown keyword 'advert_intt'/)
    const iface = keepalivedCheck(ctx, conf.replaceAll('eth0', 'eth7'))
    expect(iface.status).not.toBe(0)
    expect(iface.output2).toMatch(/eth7/)
    const script = keepalivedCheck(ctx, conf.replace(/script "([^"]+)"/, 'script "$1-missing"'))
    expect(script.status).not.toBe(0)
  })
})
