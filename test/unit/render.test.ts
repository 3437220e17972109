import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createRequire} from 'node:module'
import {mkdtempSync, readFileSync, readdirSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK, desiredState} from '../../src/components/index.js'
import {firewallRules, renderFirewall} from '../../src/components/firewall/index.js'
import {aggregateCidrs, hostGroup} from '../../src/components/firewall/rules.js'
import {hostPorts} from '../../src/engine/desired.js'
import {type Host, parseInventory, type Inventory, sshPort} from '../../src/inventory/index.js'
import {assertSafeView} from '../../src/render/safe.js'
import {shq} from '../../src/util/shell.js'
import {renderTemplate} from '../../src/render/templates.js'
import {EXAMPLES, OTHER_EXAMPLES, ROOT, fileOf, iptablesVariant, loadExample, renderAll} from './support/render.js'

const require = createRequire(import.meta.url)
const TMP = mkdtempSync(join(tmpdir(), 'foobar-render-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

describe('rendered files (snapshots)', () => {
  const variants = [
    ...EXAMPLES.map((name) => ({label: name, inv: loadExample(name)})),
    ...EXAMPLES.map((name) => ({label: `${name}-iptables`, inv: loadExample(name, iptablesVariant)})),
  ]
  for (const {label, inv} of variants) {
    for (const [host, files] of renderAll(inv)) {
      for (const f of files) {
        test(`${label}: ${host}${f.path}`, async () => {
          await expect(f.content).toMatchFileSnapshot(join('__snapshots__', 'render', label, host, f.path))
        })
      }
    }
  }

  test('foobar.yml: each host gets exactly the files for its roles', () => {
    const files = renderAll(loadExample('foobar'))
    const list = Object.fromEntries([...files].map(([h, fs]) => [h, fs.map((f) => `${f.mode.toString(8)} ${f.path}`).sort()]))
    const web = [
      '640 /etc/foobar/firewall/ufw.rules',
      '644 /etc/mysql/mariadb.conf.d/60-foobar.cnf',
      '644 /etc/nginx/conf.d/foobar.conf',
      '644 /etc/systemd/system/foobar-app.service',
      '644 /opt/foobar-app/app.py',
      // Monitoring clients (the mysqld exporter's password files are secret: never rendered).
      '644 /etc/default/prometheus-nginx-exporter',
      '644 /etc/default/prometheus-node-exporter',
      '644 /etc/systemd/system/prometheus-mysqld-exporter.service.d/foobar.conf',
      // The database's fence (its account's option file is secret: never rendered).
      '644 /etc/systemd/system/foobar-db-fence.service',
      '755 /usr/local/lib/foobar/db-fence',
    ]
    // Every host: the SSH and OS hardening.
    const hardened = [
      '600 /etc/ssh/sshd_config.d/50-foobar.conf',
      '644 /etc/apt/apt.conf.d/20auto-upgrades',
      '644 /etc/fail2ban/jail.d/foobar.local',
      '644 /etc/sysctl.d/60-foobar-hardening.conf',
      '644 /etc/issue',
      '644 /etc/issue.net',
      '644 /etc/login.defs',
      '644 /etc/security/limits.d/60-foobar.conf',
      '644 /etc/modprobe.d/60-foobar.conf',
      '644 /etc/profile.d/60-foobar.sh',
      '644 /etc/systemd/coredump.conf.d/60-foobar.conf',
      '600 /etc/usbguard/usbguard-daemon.conf',
      '600 /etc/usbguard/rules.conf',
      '644 /etc/systemd/system/usbguard.service.d/60-foobar.conf',
      '644 /etc/systemd/system/usbguard-dbus.service.d/60-foobar.conf',
      '644 /etc/systemd/system/acct.service.d/60-foobar.conf',
      // Lynis on the host's own schedule (after every change by foobar, daily): verify reads its latest report.
      '644 /etc/lynis/plugins/plugin_cached-log-time_phase1',
      '644 /etc/systemd/system/foobar-lynis.service',
      '644 /etc/systemd/system/foobar-lynis.timer',
      '644 /etc/systemd/system/foobar-rkhunter-propupd.service',
      '755 /usr/local/lib/foobar/lynis',
      // Staggered automatic upgrades: this host's window, origins, and the gate around each upgrade.
      '644 /etc/apt/apt.conf.d/52foobar-unattended-upgrades',
      '644 /etc/systemd/system/apt-daily.timer.d/60-foobar.conf',
      '644 /etc/systemd/system/apt-daily-upgrade.timer.d/60-foobar.conf',
      '644 /etc/systemd/system/apt-daily-upgrade.service.d/60-foobar.conf',
      '644 /etc/systemd/system/foobar-upgrade-boot.service',
      '755 /usr/local/sbin/foobar-upgrade-gate',
    ]
    // Hosts sharing a role read each other's upgrade status.
    const status = ['644 /etc/systemd/system/foobar-upgrade-status.socket', '644 /etc/systemd/system/foobar-upgrade-status@.service']
    const withHardening = (l: string[]) => [...l, ...hardened].sort()
    // With a monitoring host, every other host forwards its logs to it.
    const forward = '644 /etc/rsyslog.d/30-foobar-forward.conf'
    expect(list).toEqual({
      lb1: withHardening([
        '640 /etc/foobar/firewall/ufw.rules',
        '644 /etc/haproxy/haproxy.cfg',
        '644 /etc/default/prometheus-node-exporter',
        forward,
      ]),
      web1: withHardening([...web, ...status, forward]),
      web2: withHardening([...web, ...status, forward]),
      // The monitoring host: Prometheus with the alert rules, Alertmanager, the blackbox prober, the log collector.
      mon1: withHardening([
        '640 /etc/foobar/firewall/ufw.rules',
        '644 /etc/default/prometheus-node-exporter',
        '644 /etc/rsyslog.d/30-foobar-collector.conf',
        '644 /etc/prometheus/foobar-alerts.yml',
        '640 /etc/prometheus/alertmanager.yml',
        '644 /etc/default/prometheus-alertmanager',
        '644 /etc/prometheus/blackbox.yml',
        '644 /etc/default/prometheus-blackbox-exporter',
        '644 /etc/prometheus/prometheus.yml',
        '644 /etc/default/prometheus',
      ]),
    })
    const ipt = renderAll(loadExample('lab', iptablesVariant))
    const paths = (l: string[]) => l.map((x) => x.split(' ')[1]!)
    expect(
      ipt
        .get('lb1')!
        .map((f) => f.path)
        .sort(),
    ).toEqual(
      [
        ...paths(hardened),
        '/etc/apt/apt.conf.d/80foobar-proxy',
        '/etc/default/prometheus-node-exporter',
        '/etc/haproxy/haproxy.cfg',
        '/etc/iptables/rules.v4',
        '/etc/iptables/rules.v6',
      ].sort(),
    )
  })

  test('rendering twice gives identical bytes', () => {
    for (const name of EXAMPLES) {
      const a = renderAll(loadExample(name))
      const b = renderAll(loadExample(name))
      expect([...b]).toEqual([...a])
    }
  })

  test('`foobar render` writes the same bytes to DIR/<host>/<path>, twice over', () => {
    const outs = [join(TMP, 'cli-a'), join(TMP, 'cli-b')]
    for (const out of outs) {
      const run = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'render', '-i', 'inventories/foobar.yml', '--out', out], {
        cwd: ROOT,
        encoding: 'utf8',
      })
      expect(run.status, run.stderr).toBe(0)
      expect(run.stdout).toContain('148 files for 4 hosts')
    }
    const expected = renderAll(loadExample('foobar'))
    for (const [host, files] of expected) {
      for (const f of files) {
        for (const out of outs) {
          const target = join(out, host, f.path)
          expect(readFileSync(target, 'utf8'), target).toBe(f.content)
          expect(statSync(target).mode & 0o777, target).toBe(f.mode)
        }
      }
    }
    expect(readdirSync(outs[0]!).sort()).toEqual(['lb1', 'mon1', 'web1', 'web2'])
  })

  test("the build's precompiled templates (what the CLI renders with) give the sources' bytes, for every example", () => {
    // The copy next to the bundle's chunks (dist/app/, what bin/run.js runs): templates.ts requires it from its folder.
    const built = require(join(ROOT, 'dist/app/templates.precompiled.cjs')) as Record<string, {sha256: string}>
    const sources = (readdirSync(join(ROOT, 'templates'), {recursive: true}) as string[]).filter((f) => f.endsWith('.hbs')).sort()
    // Every template precompiled from its current source: none is compiled at run time.
    expect(Object.keys(built).sort()).toEqual(sources.map((f) => f.slice(0, -'.hbs'.length)).sort())
    for (const f of sources) {
      const sha = createHash('sha256')
        .update(readFileSync(join(ROOT, 'templates', f)))
        .digest('hex')
      expect(built[f.slice(0, -'.hbs'.length)]!.sha256, f).toBe(sha)
    }
    for (const name of [...EXAMPLES, ...OTHER_EXAMPLES]) {
      const out = join(TMP, `cli-pre-${name}`)
      const run = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'render', '-i', `inventories/${name}.yml`, '--out', out], {
        cwd: ROOT,
        encoding: 'utf8',
      })
      expect(run.status, run.stderr).toBe(0)
      for (const [host, files] of renderAll(loadExample(name))) {
        for (const f of files) expect(readFileSync(join(out, host, f.path), 'utf8'), `${name} ${host}${f.path}`).toBe(f.content)
      }
    }
  })

  test('--host renders only that host', () => {
    const out = join(TMP, 'cli-host')
    const run = spawnSync(
      process.execPath,
      [join(ROOT, 'bin/run.js'), 'render', '-i', 'inventories/lab.yml', '--host', 'lb1', '--out', out],
      {cwd: ROOT, encoding: 'utf8'},
    )
    expect(run.status, run.stderr).toBe(0)
    expect(readdirSync(out)).toEqual(['lb1'])
  })
})

describe('what the configs say (foobar.yml)', () => {
  const files = renderAll(loadExample('foobar'))

  test('nginx: ACME http-01 is served before the redirect; HTTPS with HSTS proxies to the app; stub_status on localhost', () => {
    const conf = fileOf(files, 'web1', '/etc/nginx/conf.d/foobar.conf')
    const acme = conf.indexOf('location ^~ /.well-known/acme-challenge/')
    const redirect = conf.indexOf('return 301 https://$host$request_uri;')
    expect(acme).toBeGreaterThan(0)
    expect(redirect).toBeGreaterThan(acme)
    expect(conf).toContain('server_name www.foobar.com foobar.com;')
    // The default server on the HTTPS port refuses a handshake that does not name the site (no certificate shown).
    expect(conf).toMatch(/listen 443 ssl http2 default_server;\n(?:.*\n)?\s+ssl_reject_handshake on;/)
    expect(conf).toContain('ssl_protocols TLSv1.2 TLSv1.3;')
    expect(conf).toContain('add_header Strict-Transport-Security "max-age=63072000" always;')
    expect(conf).toContain('proxy_pass http://foobar_app;')
    expect(conf).toMatch(/listen 127\.0\.0\.1:8081;\s+location = \/stub_status \{\s+stub_status;\s+allow 127\.0\.0\.1;\s+deny all;/)
  })

  test('nginx.responses: fixed answers before the app, per host (host > role > top level); none by default', () => {
    expect(fileOf(files, 'web1', '/etc/nginx/conf.d/foobar.conf')).not.toContain('nginx.responses')
    const text = readFileSync(join(ROOT, 'inventories', 'foobar.yml'), 'utf8').replace(
      '\nhosts:\n',
      '\nnginx:\n  responses: [{path: /old-shop/, status: 410}]\nroles:\n  web: {nginx: {responses: [{path: /wp-admin/, status: 403}]}}\nhosts:\n',
    )
    const inv = parseInventory(text, join(ROOT, 'inventories', 'foobar.yml'))
    const conf = fileOf(renderAll(inv), 'web1', '/etc/nginx/conf.d/foobar.conf')
    // The role's list replaces the top level's (a list is replaced whole, like every list in a layer).
    expect(conf).toMatch(/location \^~ \/wp-admin\/ \{\n\s+return 403;\n\s+\}\n/)
    expect(conf.indexOf('location ^~ /wp-admin/')).toBeLessThan(conf.lastIndexOf('    location / {'))
    expect(conf).not.toContain('/old-shop/')
    const problems = (t: string) => {
      try {
        parseInventory(t, 'x.yml')
        return ''
      } catch (error) {
        return ((error as {details?: string[]}).details ?? [(error as Error).message]).join('\n')
      }
    }
    for (const bad of ['/', '/a b', '/x;', '/x{'])
      expect(problems(text.replace('/old-shop/', JSON.stringify(bad))), bad).toMatch(/nginx\.responses\[0\]\.path/)
    expect(problems(text.replace('status: 410', 'status: 700'))).toMatch(/from 200 to 599/)
    expect(problems(text.replace('[{path: /old-shop/, status: 410}]', '[{path: /a/, status: 410}, {path: /a/, status: 404}]'))).toMatch(
      /names a path twice/,
    )
  })

  test('haproxy: re-encrypts to every web server and verifies their certificate; stats on localhost', () => {
    const cfg = fileOf(files, 'lb1', '/etc/haproxy/haproxy.cfg')
    expect(cfg).toContain('ssl verify required ca-file /etc/foobar/tls/backend-ca.pem verifyhost www.foobar.com')
    expect(cfg).toContain('server web1 203.0.113.11:443')
    expect(cfg).toContain('server web2 203.0.113.12:443')
    expect(cfg).toContain('bind :::443 v4v6 ssl crt /etc/foobar/tls/site.pem alpn h2,http/1.1')
    // The check asks nginx's fixed path; each web server maps it to the app's health path (lb.health_check).
    expect(cfg).toContain('http-check send meth GET uri /.foobar-health ver HTTP/1.1 hdr Host www.foobar.com')
    expect(fileOf(files, 'web1', '/etc/nginx/conf.d/foobar.conf')).toMatch(/location = \/\.foobar-health \{\s+rewrite \^ \/healthz last;/)
    expect(cfg).toContain('stats socket /run/haproxy/admin.sock')
    expect(cfg).toContain('bind 127.0.0.1:8404')
  })

  test('mariadb: unique server_id, ROW binlog, GTID, semi-sync, every host starts read-only (fenced), bound to the host address', () => {
    const primary = fileOf(files, 'web1', '/etc/mysql/mariadb.conf.d/60-foobar.cnf')
    const replica = fileOf(files, 'web2', '/etc/mysql/mariadb.conf.d/60-foobar.cnf')
    expect(primary).toMatch(/^server_id = 2$/m)
    expect(replica).toMatch(/^server_id = 3$/m)
    // The role is not in the file: a promotion rewrites nothing and restarts nothing.
    expect(
      primary
        .replace(/2$/m, '')
        .replace(/203\.0\.113\.11/g, 'X')
        .replace(/web1/g, 'H'),
    ).toBe(
      replica
        .replace(/3$/m, '')
        .replace(/203\.0\.113\.12/g, 'X')
        .replace(/web2/g, 'H'),
    )
    for (const cnf of [primary, replica]) {
      expect(cnf).toMatch(/^read_only = ON$/m)
      expect(cnf).toMatch(/^rpl_semi_sync_master_enabled = ON$/m)
      expect(cnf).toMatch(/^rpl_semi_sync_slave_enabled = ON$/m)
      expect(cnf).toMatch(/^rpl_semi_sync_master_timeout = 10000$/m)
      expect(cnf).toMatch(/^rpl_semi_sync_master_wait_point = AFTER_SYNC$/m)
    }
    expect(primary).toMatch(/^bind-address = 203\.0\.113\.11$/m)
    expect(replica).toMatch(/^bind-address = 203\.0\.113\.12$/m)
    for (const cnf of [primary, replica]) {
      expect(cnf).toMatch(/^binlog_format = ROW$/m)
      expect(cnf).toMatch(/^log_bin = \/var\/lib\/mysql\/mysql-bin$/m)
      expect(cnf).toMatch(/^gtid_strict_mode = ON$/m)
    }
  })
})

/*
 * Firewall policy, from the pure rule list. An inventory with every role, IPv6 hosts and v6 admin networks.
 */
const FW = `site: {domain: www.example.com, email: admin@example.com}
firewall:
  admin_cidrs: [192.0.2.0/24, "2001:db8:a::/48"]
  extra_ports:
    db: [{port: 5555, proto: udp, from: [192.0.2.7], comment: backup agent}]
monitoring:
  sources: [198.51.100.10/32, "2001:db8:f::10"]
mysql: {primary: db1, replicas: [db2, web2], replication_password: {env: REPL}}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb]}
  - {name: lb2, address: "2001:db8::10", roles: [lb]}
  - {name: web1, address: 192.0.2.11, roles: [web], ssh: {port: 2222}}
  - {name: web2, address: "2001:db8::11", roles: [web, db]}
  - {name: db1, address: 192.0.2.21, roles: [db]}
  - {name: db2, address: 192.0.2.22, roles: [db]}
  - {name: mon1, address: 192.0.2.30, roles: [monitoring]}
`

/** A host's rules from the ports its components open (no control address). */
const rulesFor = (inv: Inventory, host: Host) => firewallRules(host, hostPorts(STACK, inv, host))
/** A host's rendered firewall files. */
const firewallOf = (inv: Inventory, host: Host) => renderFirewall(host, rulesFor(inv, host))

describe('firewall rules per role (firewallRules)', () => {
  const inv = parseInventory(FW, '/srv/fw.yml')
  const rulesOf = (name: string) =>
    rulesFor(
      inv,
      inv.hosts.find((h) => h.name === name)!,
    )
  const port = (name: string, p: number, proto = 'tcp') => rulesOf(name).find((r) => r.port === p && r.proto === proto)
  const from = (name: string, p: number, proto = 'tcp') => port(name, p, proto)?.from
  const ports = (name: string) => rulesOf(name).map((r) => `${r.port}/${r.proto}`)

  const ADMIN = ['192.0.2.0/24', '2001:db8:a::/48']
  const SCRAPERS = ['192.0.2.30/32', '198.51.100.10/32', '2001:db8:f::10/128'].sort()
  const LBS = ['192.0.2.10/32', '2001:db8::10/128'].sort()

  test('only the ports each role needs are open', () => {
    // 9731: the upgrade status, for the hosts sharing a role (mon1 shares none).
    expect(ports('lb1')).toEqual(['22/tcp', '80/tcp', '443/tcp', '8405/tcp', '9100/tcp', '9731/tcp'])
    expect(ports('web1')).toEqual(['80/tcp', '443/tcp', '2222/tcp', '9100/tcp', '9113/tcp', '9731/tcp'])
    expect(ports('web2')).toEqual(['22/tcp', '80/tcp', '443/tcp', '3306/tcp', '5555/udp', '9100/tcp', '9104/tcp', '9113/tcp', '9731/tcp'])
    expect(ports('db1')).toEqual(['22/tcp', '3306/tcp', '5555/udp', '9100/tcp', '9104/tcp', '9731/tcp'])
    expect(ports('mon1')).toEqual(['22/tcp', '6514/tcp', '9090/tcp', '9093/tcp', '9100/tcp'])
  })

  test("SSH (at each host's own port) only from the admin networks", () => {
    for (const h of inv.hosts) expect(from(h.name, sshPort(h)), h.name).toEqual(ADMIN)
    expect(port('web1', 22)).toBeUndefined()
  })

  test('80 and 443 on the load balancers from anywhere', () => {
    for (const lb of ['lb1', 'lb2']) {
      expect(from(lb, 80)).toEqual([])
      expect(from(lb, 443)).toEqual([])
    }
  })

  test('the backend HTTPS port (and ACME on 80) on web servers only from the load balancers', () => {
    for (const web of ['web1', 'web2']) {
      expect(from(web, 443)).toEqual(LBS)
      expect(from(web, 80)).toEqual(LBS)
    }
    const custom = parseInventory(FW.replace('roles: [web], ssh: {port: 2222}}', 'roles: [web], lb: {backend_port: 8443}}'), '/srv/fw.yml')
    const web1 = custom.hosts.find((h) => h.name === 'web1')!
    const rules = rulesFor(custom, web1)
    expect(rules.find((r) => r.port === 8443)?.from).toEqual(LBS)
    expect(rules.find((r) => r.port === 443)).toBeUndefined()
  })

  test('3306 only from the web hosts and the other database hosts', () => {
    expect(from('db1', 3306)).toEqual(['192.0.2.11/32', '192.0.2.22/32', '2001:db8::11/128'])
    expect(from('db2', 3306)).toEqual(['192.0.2.11/32', '192.0.2.21/32', '2001:db8::11/128'])
    expect(from('web2', 3306)).toEqual(['192.0.2.11/32', '192.0.2.21/32', '192.0.2.22/32'])
    expect(port('web1', 3306)).toBeUndefined()
    expect(port('lb1', 3306)).toBeUndefined()
  })

  test('monitoring ports only from the monitoring sources and the monitoring host', () => {
    for (const [h, p] of [
      ['lb1', 9100],
      ['lb1', 8405],
      ['web1', 9113],
      ['db1', 9104],
      ['web2', 9104],
    ] as const)
      expect(from(h, p), `${h}:${p}`).toEqual(SCRAPERS)
    // the monitoring host does not need to scrape itself through its firewall
    expect(from('mon1', 9100)).toEqual(['198.51.100.10/32', '2001:db8:f::10/128'])
    expect(from('mon1', 9090)).toEqual(ADMIN)
    // every other host, adjacent addresses merged into one network (.10 + .11 = .10/31)
    expect(from('mon1', 6514)).toEqual(['192.0.2.10/31', '192.0.2.21/32', '192.0.2.22/32', '2001:db8::10/127'])
  })

  test('no monitoring sources and no monitoring host: no exporter port is open', () => {
    const none = parseInventory(
      FW.replace('  sources: [198.51.100.10/32, "2001:db8:f::10"]\n', '  sources: []\n').replace(
        '  - {name: mon1, address: 192.0.2.30, roles: [monitoring]}\n',
        '',
      ),
      '/srv/fw.yml',
    )
    for (const h of none.hosts)
      expect(
        rulesFor(none, h)
          .map((r) => r.port)
          .filter((p) => p !== undefined && p >= 8400 && p !== 9731),
        h.name,
      ).toEqual([])
  })

  test('extra ports per role go to hosts with that role only', () => {
    expect(port('db1', 5555, 'udp')).toEqual({port: 5555, proto: 'udp', from: ['192.0.2.7/32'], comment: 'backup agent'})
    expect(port('web1', 5555, 'udp')).toBeUndefined()
  })

  test('iptables: v4 sources in rules.v4, v6 sources in rules.v6, anywhere in both', () => {
    const ipt = parseInventory(FW.replace('firewall:\n', 'firewall:\n  backend: iptables\n'), '/srv/fw.yml')
    const tables = (name: string) => {
      const files = firewallOf(
        ipt,
        ipt.hosts.find((h) => h.name === name)!,
      ).files
      return {
        v4: files.find((f) => f.path === '/etc/iptables/rules.v4')!.content,
        v6: files.find((f) => f.path === '/etc/iptables/rules.v6')!.content,
      }
    }
    const accepts = (table: string) => table.split('\n').filter((l) => / --dport /.test(l))
    const lb1 = tables('lb1')
    expect(accepts(lb1.v4)).toEqual([
      '-A INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 22 -m comment --comment "ssh from admin networks" -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 80 -m comment --comment "http (redirect and ACME)" -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 443 -m comment --comment "https" -j ACCEPT',
      '-A INPUT -s 192.0.2.30/32 -p tcp -m tcp --dport 8405 -m comment --comment "haproxy metrics from monitoring" -j ACCEPT',
      '-A INPUT -s 198.51.100.10/32 -p tcp -m tcp --dport 8405 -m comment --comment "haproxy metrics from monitoring" -j ACCEPT',
      '-A INPUT -s 192.0.2.30/32 -p tcp -m tcp --dport 9100 -m comment --comment "node exporter from monitoring" -j ACCEPT',
      '-A INPUT -s 198.51.100.10/32 -p tcp -m tcp --dport 9100 -m comment --comment "node exporter from monitoring" -j ACCEPT',
    ])
    expect(accepts(lb1.v6)).toEqual([
      '-A INPUT -s 2001:db8:a::/48 -p tcp -m tcp --dport 22 -m comment --comment "ssh from admin networks" -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 80 -m comment --comment "http (redirect and ACME)" -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 443 -m comment --comment "https" -j ACCEPT',
      '-A INPUT -s 2001:db8:f::10/128 -p tcp -m tcp --dport 8405 -m comment --comment "haproxy metrics from monitoring" -j ACCEPT',
      '-A INPUT -s 2001:db8:f::10/128 -p tcp -m tcp --dport 9100 -m comment --comment "node exporter from monitoring" -j ACCEPT',
      // lb2, the other load balancer, is IPv6 only: its upgrade status rule is in rules.v6 alone.
      '-A INPUT -s 2001:db8::10/128 -p tcp -m tcp --dport 9731 -m comment --comment "upgrade status for hosts sharing a role" -j ACCEPT',
    ])
    const web1 = tables('web1')
    expect(accepts(web1.v4).filter((l) => l.includes('--dport 443 '))).toEqual([expect.stringContaining('-s 192.0.2.10/32 ')])
    expect(accepts(web1.v6).filter((l) => l.includes('--dport 443 '))).toEqual([expect.stringContaining('-s 2001:db8::10/128 ')])
    // A rule whose sources are all IPv4 opens nothing in IPv6 (and the reverse).
    const db1 = tables('db1')
    expect(db1.v6).not.toContain('--dport 5555')
    expect(accepts(db1.v6).filter((l) => l.includes('--dport 3306 '))).toEqual([expect.stringContaining('-s 2001:db8::11/128 ')])
    for (const h of ipt.hosts) {
      const t = tables(h.name)
      expect(t.v4, h.name).not.toMatch(/-s [0-9a-f]*:/)
      expect(t.v6, h.name).not.toMatch(/-s \d+\.\d+/)
      for (const table of [t.v4, t.v6]) {
        expect(table).toContain(':INPUT DROP [0:0]')
        expect(table).toContain('-A INPUT -i lo -j ACCEPT')
        expect(table).toContain('-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')
      }
    }
  })

  test('iptables with ipv6: false: rules.v6 still loads but opens nothing', () => {
    const ipt = parseInventory(FW.replace('firewall:\n', 'firewall:\n  backend: iptables\n  ipv6: false\n'), '/srv/fw.yml')
    const v6 = firewallOf(ipt, ipt.hosts[0]!).files.find((f) => f.path === '/etc/iptables/rules.v6')!.content
    expect(v6).toContain(':INPUT DROP [0:0]')
    expect(v6).not.toContain('--dport')
  })

  test('ufw: one line per source, v4 and v6 alike, with the policy defaults first', () => {
    const ufw = firewallOf(
      inv,
      inv.hosts.find((h) => h.name === 'web1')!,
    ).files[0]!.content
    const lines = ufw.split('\n').filter((l) => l && !l.startsWith('#'))
    expect(lines.slice(0, 3)).toEqual(['default deny incoming', 'default allow outgoing', 'default deny routed'])
    expect(lines).toContain("allow in proto tcp from 2001:db8::10/128 to any port 443 comment 'https from the load balancer'")
    expect(lines).toContain("allow in proto tcp from 192.0.2.10/32 to any port 443 comment 'https from the load balancer'")
    expect(lines.filter((l) => l.includes('port 443'))).toHaveLength(2)
  })
})

describe('aggregateCidrs: fewer rules, exactly the same addresses', () => {
  test('merges duplicates, overlaps and adjacent networks; keeps gaps', () => {
    expect(aggregateCidrs([])).toEqual([])
    expect(aggregateCidrs(['10.0.0.2/32', '10.0.0.3/32', '10.0.0.3/32'])).toEqual(['10.0.0.2/31'])
    expect(aggregateCidrs(['10.0.0.1/32', '10.0.0.2/32'])).toEqual(['10.0.0.1/32', '10.0.0.2/32'])
    expect(aggregateCidrs(['10.0.0.0/24', '10.0.0.77/32', '10.0.1.0/24'])).toEqual(['10.0.0.0/23'])
    expect(aggregateCidrs(['10.0.0.5/24'])).toEqual(['10.0.0.0/24'])
    expect(aggregateCidrs(['0.0.0.0/0', '10.0.0.1/32'])).toEqual(['0.0.0.0/0'])
    expect(aggregateCidrs(['2001:db8::/128', '2001:db8::1/128', '192.0.2.1/32'])).toEqual(['192.0.2.1/32', '2001:db8::/127'])
    expect(aggregateCidrs(['2001:DB8:0:0:0:0:0:2/128', '::ffff:192.0.2.1/128'])).toEqual(['2001:db8::2/128', '::ffff:c000:201/128'])
  })

  test('covers exactly the input addresses (exhaustive over random sets in a /26)', () => {
    let seed = 7
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const members = (cidrs: string[]) => {
      const set = new Set<number>()
      for (const c of cidrs) {
        const [ip, len] = c.split('/')
        const last = Number(ip!.split('.')[3])
        const size = 2 ** (32 - Number(len))
        for (let i = last - (last % size); i < last - (last % size) + size; i++) set.add(i)
      }
      return [...set].sort((a, b) => a - b)
    }
    for (let round = 0; round < 200; round++) {
      const input = Array.from({length: 1 + Math.floor(rand() * 20)}, () => {
        const len = 26 + Math.floor(rand() * 7)
        return `10.9.8.${Math.floor(rand() * 64)}/${len}`
      })
      const out = aggregateCidrs(input)
      expect(members(out), input.join(' ')).toEqual(members(input))
      expect(out.length).toBeLessThanOrEqual(new Set(input).size)
    }
  })

  test('a 1,000-host fleet: the database port is a handful of networks, not a line per peer', () => {
    const hosts = Array.from(
      {length: 1000},
      (_, i) =>
        `  - {name: h${i}, address: 10.1.${Math.floor(i / 250)}.${(i % 250) + 2}, roles: [${i === 0 ? 'lb' : i <= 800 ? 'web' : 'db'}]}`,
    )
    const dbs = Array.from({length: 199}, (_, i) => `h${801 + i}`)
    const inv = parseInventory(
      `site: {domain: www.example.com, email: admin@example.com}\nfirewall: {admin_cidrs: [192.0.2.0/24]}\nhardening: {skip: {unattended_upgrades: "one window per host does not fit 800 web servers in a day"}}\nmysql: {primary: ${dbs[0]}, replicas: [${dbs.slice(1).join(', ')}], replication_password: {env: R}}\nhosts:\n${hosts.join('\n')}\n`,
      '/srv/big.yml',
    )
    const db = inv.hosts.find((h) => h.name === 'h900')!
    const sources = rulesFor(inv, db).find((r) => r.port === 3306)!.from
    expect(sources.length).toBeLessThan(60) // instead of 998 lines
    const num = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
    const covered = (ip: string) =>
      sources.some((c) => {
        const [net, len] = c.split('/')
        const size = 2 ** (32 - Number(len))
        return Math.floor(num(ip) / size) === Math.floor(num(net!) / size)
      })
    for (const h of inv.hosts) expect(covered(h.address), h.name).toBe(h !== db && (h.roles.includes('web') || h.roles.includes('db')))
    expect(covered('10.1.3.253')).toBe(false) // an address no host has
  })
})

describe('hostGroup: a host group as sources, worked out once per inventory', () => {
  test('exactly aggregateCidrs of the group less the host (random groups, IPv4 and IPv6, shared addresses)', () => {
    let seed = 11
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let round = 0; round < 60; round++) {
      const hosts = Array.from({length: 2 + Math.floor(rand() * 40)}, (_, i) => {
        const v6 = rand() < 0.3
        const n = Math.floor(rand() * 48)
        const address = v6 ? `2001:db8::${n.toString(16)}` : `10.0.${Math.floor(n / 16)}.${n % 16}`
        return {name: `h${i}`, address, family: v6 ? 6 : 4, roles: [rand() < 0.6 ? 'web' : 'db']} as unknown as Host
      })
      const inv = {hosts} as unknown as Inventory
      const webs = hostGroup((h) => h.roles.includes('web'))
      const expected = (except?: Host) =>
        aggregateCidrs(hosts.filter((h) => h.roles.includes('web') && h !== except).map((h) => `${h.address}/${h.family === 4 ? 32 : 128}`))
      expect(webs.all(inv)).toEqual(expected())
      for (const h of hosts) expect(webs.except(inv, h), `${h.name} ${h.address}`).toEqual(expected(h))
    }
  })

  test('shared lists are frozen: changing one throws instead of changing every host', () => {
    const hosts = [{name: 'a', address: '10.0.0.1', family: 4, roles: ['lb']}] as unknown as Host[]
    const all = hostGroup(() => true).all({hosts} as unknown as Inventory)
    expect(() => all.push('0.0.0.0/0')).toThrow(TypeError)
  })
})

describe('second line of defence: the view-model safety check', () => {
  test('refuses newlines, `;`, braces, quotes and shell syntax anywhere in a view, naming where', () => {
    for (const bad of ['a\nb', 'a;b', 'a{b', 'a}b', 'a"b', "a'b", 'a`b`', 'a$(b)', 'a\\b', 'a\rb', 'a\u0000b', 'a|b', 'a&b', 'a<b']) {
      expect(() => assertSafeView({ok: 'fine', nested: {list: ['x', bad]}}), JSON.stringify(bad)).toThrow(
        /unsafe value at view\.nested\.list\[1\]/,
      )
    }
    expect(() =>
      assertSafeView({domain: 'www.foobar.com', port: 443, on: true, list: ['a.b', '10.0.0.0/8'], none: undefined}),
    ).not.toThrow()
  })

  test('renderTemplate refuses a hostile value even if it got past the schema', () => {
    expect(() => renderTemplate('base/apt-proxy.conf', {proxy: 'http://x";\nAcquire::http::Proxy "http://evil'})).toThrow(
      /unsafe value at view\.proxy/,
    )
  })

  test('a schema-bypassing inventory renders nothing: desiredState throws on the bad domain', () => {
    const inv: Inventory = loadExample('foobar')
    const hacked: Inventory = {...inv, site: {...inv.site, domain: 'www.foobar.com; include /etc/passwd'}}
    expect(() => desiredState(hacked, hacked.hosts[1]!)).toThrow(/unsafe value at view\.domain/)
    const newline: Inventory = {
      ...inv,
      hosts: inv.hosts.map((h) => ({...h, lb: {...h.lb, healthCheck: '/healthz\n    server evil 6.6.6.6:443'}})),
    }
    // The health path reaches nginx's site config (HAProxy asks nginx's fixed path, which nginx maps to it).
    expect(() => desiredState(newline, newline.hosts[1]!)).toThrow(/unsafe value at view\.health/)
  })
})

describe('shq: shell quoting for remote commands', () => {
  const hostile = [
    'plain',
    '',
    'two words',
    "it's",
    "''",
    '"double"',
    '$(touch /tmp/foobar-shq-pwned)',
    '`touch /tmp/foobar-shq-pwned`',
    '${HOME}',
    'a;b && c || d | e > f < g',
    'new\nline',
    'glob * ? [a]',
    'back\\slash',
    '~root',
    '#comment',
    'tab\there',
    "'; touch /tmp/foobar-shq-pwned; echo '",
  ]

  test('sh -c "printf %s <quoted>" prints the value literally', () => {
    for (const value of hostile) {
      const run = spawnSync('sh', ['-c', `printf '%s' ${shq(value)}`], {encoding: 'utf8', cwd: TMP})
      expect(run.status, value).toBe(0)
      expect(run.stdout, JSON.stringify(value)).toBe(value)
    }
    expect(readdirSync('/tmp').filter((n) => n.startsWith('foobar-shq-pwned'))).toEqual([])
  })

  test('echo as in the brief: sh -c "echo $(shq x)"', () => {
    const value = 'x\'y $(id) `id` ; "z"'
    const run = spawnSync('sh', ['-c', `echo ${shq(value)}`], {encoding: 'utf8'})
    expect(run.stdout).toBe(`${value}\n`)
  })

  test('safe words stay unquoted, numbers work', () => {
    expect(shq('/etc/nginx/conf.d/foobar.conf')).toBe('/etc/nginx/conf.d/foobar.conf')
    expect(shq(443)).toBe('443')
    expect(shq('')).toBe("''")
  })
})
